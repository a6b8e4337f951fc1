package guestinit

import "testing"

func TestDecideMode(t *testing.T) {
	cases := []struct {
		argv       []string
		initExists bool
		want       Mode
	}{
		{[]string{"/sbin/provium-agent"}, false, Standalone},
		{[]string{"/sbin/provium-agent"}, true, Chain},
		{[]string{"/init"}, true, Standalone},
		{[]string{"//init"}, true, Standalone},
		{[]string{"init"}, true, Standalone},
		{[]string{"/sbin/init"}, true, Chain},
		{[]string{"/sbin/provium-agent", "--worker-fd", "5"}, true, Worker},
		{[]string{"/sbin/provium-agent", "--worker-fd=5"}, false, Worker},
		{nil, true, Chain},
	}
	for _, c := range cases {
		if got := DecideMode(c.argv, c.initExists); got != c.want {
			t.Errorf("DecideMode(%q, %v) = %v, want %v", c.argv, c.initExists, got, c.want)
		}
	}
}
