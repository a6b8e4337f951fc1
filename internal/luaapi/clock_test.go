package luaapi_test

import "testing"

func TestClockOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "clock.test.lua")
	if len(res.Tests) < 7 {
		t.Fatalf("only %d tests ran", len(res.Tests))
	}
}
