package server

import "testing"

// TestDialHost: the manager's own client dials the broker where it
// listens. Issue 14, item 1: it dialled 127.0.0.1 whatever the listen
// address, and a broker bound to one address of a multi-homed host never
// answered there.
func TestDialHost(t *testing.T) {
	for _, tt := range []struct{ listen, want string }{
		{"", "127.0.0.1"},
		{"0.0.0.0", "127.0.0.1"},
		{"::", "127.0.0.1"}, // Go's "tcp" listeners on [::] take IPv4 too
		{"10.99.0.1", "10.99.0.1"},
		{"127.0.0.5", "127.0.0.5"},
		{"fd00::1", "fd00::1"},
		{"broker.example", "broker.example"},
	} {
		if got := dialHost(tt.listen); got != tt.want {
			t.Errorf("dialHost(%q) = %q, want %q", tt.listen, got, tt.want)
		}
	}
}
