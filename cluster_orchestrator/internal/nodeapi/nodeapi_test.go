package nodeapi

import "testing"

// TestBrokerFor: a node that reached the cluster from elsewhere is not
// handed a loopback broker address (Docker Compose's default advertise
// address), but the host it dialled, with the broker's port.
func TestBrokerFor(t *testing.T) {
	for _, tt := range []struct{ url, host, want string }{
		{"tcp://127.0.0.1:10003", "192.0.2.10:10100", "tcp://192.0.2.10:10003"},
		{"tcp://localhost:10003", "192.0.2.10:10100", "tcp://192.0.2.10:10003"},
		{"tcp://127.0.0.1:10003", "[2001:db8::5]:10100", "tcp://[2001:db8::5]:10003"},
		{"tcp://127.0.0.1:10003", "edge.example:10100", "tcp://edge.example:10003"},
		{"tcp://127.0.0.1", "192.0.2.10:10100", "tcp://192.0.2.10"},
		{"tcp://127.0.0.1:10003", "192.0.2.10", "tcp://192.0.2.10:10003"},
		// A node on the same machine keeps loopback.
		{"tcp://127.0.0.1:10003", "127.0.0.1:10100", "tcp://127.0.0.1:10003"},
		{"tcp://127.0.0.1:10003", "localhost:10100", "tcp://127.0.0.1:10003"},
		{"tcp://127.0.0.1:10003", "[::1]:10100", "tcp://127.0.0.1:10003"},
		// An advertised address that is not loopback is the operator's word.
		{"tcp://10.0.0.5:10003", "192.0.2.10:10100", "tcp://10.0.0.5:10003"},
		{"tls://broker.example:8883", "192.0.2.10:10100", "tls://broker.example:8883"},
		{"tcp://127.0.0.1:10003", "", "tcp://127.0.0.1:10003"},
	} {
		if got := brokerFor(tt.url, tt.host); got != tt.want {
			t.Errorf("brokerFor(%q, %q) = %q, want %q", tt.url, tt.host, got, tt.want)
		}
	}
}
