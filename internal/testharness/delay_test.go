package testharness

import (
	"net"
	"testing"
	"time"
)

// udpIn opens a UDP socket in a host's namespace.
func udpIn(t *testing.T, netns string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := InNetns(netns, func() (err error) {
		c, err = net.ListenUDP("udp", &net.UDPAddr{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDelay: a host's probe packets take the delay set, and a new one
// after Set; other ports are not delayed.
func TestDelay(t *testing.T) {
	c := testNetwork
	c.HostPrefix, c.VethPrefix = "thkhd", "thkhdv"
	n := MustNetwork(t, c)
	a := n.MustAddHost(t, 4)
	const port = 51899
	echo := func(p int) *net.UDPConn {
		srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(n.Addr), Port: p})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			buf := make([]byte, 64)
			for {
				k, from, err := srv.ReadFromUDP(buf)
				if err != nil {
					return
				}
				srv.WriteToUDP(buf[:k], from)
			}
		}()
		return srv
	}
	defer echo(port).Close()
	defer echo(port + 1).Close()
	cl := udpIn(t, a.Netns)
	defer cl.Close()
	rtt := func(p int) time.Duration {
		t.Helper()
		best := time.Hour
		buf := make([]byte, 64)
		for range 3 {
			start := time.Now()
			if _, err := cl.WriteToUDP([]byte("ping"), &net.UDPAddr{IP: net.ParseIP(n.Addr), Port: p}); err != nil {
				t.Fatal(err)
			}
			cl.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, _, err := cl.ReadFromUDP(buf); err != nil {
				t.Fatalf("no echo from port %d: %v", p, err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	d, err := StartDelay(a.Netns, 99, port, 30*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := rtt(port); got < 30*time.Millisecond || got > 45*time.Millisecond {
		t.Errorf("round trip with a 30 ms delay: %v", got)
	}
	if got := rtt(port + 1); got > 10*time.Millisecond {
		t.Errorf("another port's round trip: %v, want no delay", got)
	}
	d.Set(80 * time.Millisecond)
	if got := rtt(port); got < 80*time.Millisecond || got > 95*time.Millisecond {
		t.Errorf("round trip after Set(80ms): %v", got)
	}
	if d.Packets.Load() == 0 {
		t.Error("no packet counted")
	}
}
