package luaapi_test

import "testing"

func TestDisksOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "disk.test.lua")
	if len(res.Tests) != 5 {
		t.Fatalf("%d tests ran, want 5", len(res.Tests))
	}
}
