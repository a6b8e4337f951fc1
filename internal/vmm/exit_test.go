package vmm

import "testing"

func TestClassify(t *testing.T) {
	cases := []struct {
		f    exitFacts
		want ExitKind
	}{
		{exitFacts{}, ExitUnexpected},
		{exitFacts{shutdownReason: "host-signal"}, ExitUnexpected},
		{exitFacts{shutdownReason: "guest-shutdown"}, ExitGuestPoweroff},
		{exitFacts{shutdownReason: "guest-shutdown", quitRequested: true}, ExitGuestPoweroff},
		{exitFacts{shutdownReason: "host-qmp-quit", quitRequested: true}, ExitQuit},
		{exitFacts{quitRequested: true}, ExitQuit},
		{exitFacts{shutdownReason: "guest-panic"}, ExitGuestPanic},
		{exitFacts{panicked: true, quitRequested: true}, ExitGuestPanic},
		{exitFacts{shutdownReason: "guest-reset"}, ExitGuestReboot},
		{exitFacts{shutdownReason: "guest-reset", quitRequested: true}, ExitGuestReboot},
		{exitFacts{shutdownReason: "guest-reset", panicked: true}, ExitGuestPanic},
	}
	for _, c := range cases {
		if got := classify(c.f); got != c.want {
			t.Errorf("classify(%+v) = %v, want %v", c.f, got, c.want)
		}
	}
}
