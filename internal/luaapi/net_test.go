package luaapi_test

import "testing"

func TestNetworkBasicsOnRealGuests(t *testing.T) {
	res := runGuestFile(t, "net_basic.test.lua")
	if len(res.Tests) != 4 {
		t.Fatalf("%d tests ran", len(res.Tests))
	}
}
