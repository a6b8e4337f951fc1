package luaapi_test

import "testing"

func TestDisksOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "disk.test.lua")
	if len(res.Tests) != 6 {
		t.Fatalf("%d tests ran, want 6", len(res.Tests))
	}
}
