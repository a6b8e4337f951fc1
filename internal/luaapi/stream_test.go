package luaapi_test

import "testing"

func TestStreamsOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "streams.test.lua")
	if len(res.Tests) < 10 {
		t.Fatalf("only %d tests ran", len(res.Tests))
	}
}
