package netaddr

import (
	"net"
	"testing"
)

// TestFirstIPv4 checks the answer is an IPv4 address of this machine.
func TestFirstIPv4(t *testing.T) {
	got := net.ParseIP(FirstIPv4())
	if got == nil || got.To4() == nil {
		t.Fatalf("FirstIPv4() = %q, not an IPv4 address", FirstIPv4())
	}
	if got.IsLoopback() {
		return // a machine with no other interface
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(got) {
			return
		}
	}
	t.Errorf("%s is not an address of this machine (%v)", got, addrs)
}
