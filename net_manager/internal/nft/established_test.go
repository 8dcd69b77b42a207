package nft

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// serveEcho answers each line of every connection with "<local ip>\n",
// keeping the connection open.
func (tp *topo) serveEcho(n *nsNode, addr string) {
	var ln net.Listener
	must(tp.t, "listen", inNS(n, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	}))
	tp.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					fmt.Fprintf(c, "%s\n", c.LocalAddr().(*net.TCPAddr).IP)
				}
			}()
		}
	}()
}

// TestEstablishedFlowKeepsBackend: when a service IP's backends change
// (closest_ip's nearest node moves), new connections go to the new backend
// and an established TCP connection stays with the one it was translated
// to.
func TestEstablishedFlowKeepsBackend(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(testCfg)
	tp.serveEcho(tp.inst[0], ":9090")
	tp.serveEcho(tp.inst[1], ":9090")
	svc := []Service{{IP: netip.MustParseAddr(svcIP), Backends: addrs(tp.insIP[0])}}
	must(t, "Apply", tb.Apply(svc, nil))
	var c net.Conn
	must(t, "dial", inNS(tp.node, func() (err error) {
		c, err = net.DialTimeout("tcp4", svcIP+":9090", 2*time.Second)
		return err
	}))
	defer c.Close()
	r := bufio.NewReader(c)
	ask := func() string {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := fmt.Fprintln(c, "?"); err != nil {
			t.Fatalf("write on the established connection: %v", err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read on the established connection: %v", err)
		}
		return strings.TrimSpace(line)
	}
	if got := ask(); got != tp.insIP[0] {
		t.Fatalf("first answer from %s, want %s", got, tp.insIP[0])
	}
	svc[0].Backends = addrs(tp.insIP[1])
	must(t, "Apply the other backend", tb.Apply(svc, nil))
	var fresh string
	must(t, "new connection", inNS(tp.node, func() error {
		n, err := net.DialTimeout("tcp4", svcIP+":9090", 2*time.Second)
		if err != nil {
			return err
		}
		defer n.Close()
		_ = n.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintln(n, "?")
		line, err := bufio.NewReader(n).ReadString('\n')
		fresh = strings.TrimSpace(line)
		return err
	}))
	if fresh != tp.insIP[1] {
		t.Errorf("a new connection went to %s, want the new backend %s", fresh, tp.insIP[1])
	}
	for range 3 {
		if got := ask(); got != tp.insIP[0] {
			t.Fatalf("the established connection moved to %s, want it kept on %s", got, tp.insIP[0])
		}
	}
}

// TestEstablishedFirst: in the filter chains that every forwarded packet
// passes, packets of established connections are accepted by the first
// rule, before the refusals and the guards (which concern new
// connections), with and without guards.
func TestEstablishedFirst(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(testCfg)
	svc := []Service{{IP: netip.MustParseAddr(svcIP), Backends: addrs(tp.insIP[0])}}
	for _, iso := range []Isolation{{}, {Guards: []Guard{{Dests: addrs(tp.insIP[0]), Sources: addrs(tp.insIP[1])}}}} {
		must(t, "ApplyGuarded", tb.ApplyGuarded(svc, nil, iso))
		for _, ch := range []string{chainFwdFilter, chainOutFilter} {
			out := tp.nft("list", "chain", "ip", "thicket", ch)
			var rules []string
			for _, l := range strings.Split(out, "\n") {
				l = strings.TrimSpace(l)
				if l != "" && !strings.HasPrefix(l, "table") && !strings.HasPrefix(l, "chain") && !strings.HasPrefix(l, "type") && l != "}" {
					rules = append(rules, l)
				}
			}
			if len(rules) < 2 || rules[0] != "ct state established,related accept" {
				t.Errorf("%d guards: chain %s: rules %q, want ct state established,related accept first", len(iso.Guards), ch, rules)
			}
		}
	}
}
