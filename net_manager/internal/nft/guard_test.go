package nft

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// bridgeThroughIPHooks makes the node's bridge br0 pass bridged IPv4
// through the ip family's hooks (what the overlay sets on its bridge for
// isolation between instances of one node).
func (tp *topo) bridgeThroughIPHooks() {
	tp.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "-n", tp.node.name, "link", "set", "br0", "type", "bridge", "nf_call_iptables", "1").CombinedOutput(); err != nil {
		tp.t.Fatalf("nf_call_iptables on br0: %v\n%s", err, out)
	}
}

// TestGuards: two tenants on one bridge. A = i0, i1 (servers), B = i2
// (server), i3 (client). B cannot open connections to A's instances, by
// address or through a service IP, over TCP or UDP; it can to its own; the
// node and other nodes' addresses outside the instance network are not
// restricted; a guard that allows i3 lets it in; with no guards nothing is
// isolated.
func TestGuards(t *testing.T) {
	tp := newTopo(t)
	tp.bridgeThroughIPHooks()
	tb := tp.newTables(testCfg)
	a, b := addrs(tp.insIP[0], tp.insIP[1]), addrs(tp.insIP[2], tp.insIP[3])
	svc := []Service{{IP: netip.MustParseAddr(svcIP), Backends: addrs(tp.insIP[0])}}
	guards := []Guard{{Dests: append(addrs(svcIP), a...), Sources: a}, {Dests: b, Sources: b}}
	must(t, "ApplyGuarded", tb.ApplyGuarded(svc, nil, Isolation{Guards: guards}))
	t.Logf("nft list table ip thicket:\n%s", tp.nft("list", "table", "ip", "thicket"))

	reach := func(from *nsNode, addr string) error {
		_, _, err := getWithin(from, addr, time.Second)
		return err
	}
	udp := func(from *nsNode, addr string) error {
		c, err := dialUDP(from, addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = askUDP(c)
		return err
	}
	type check struct {
		name string
		err  error
		ok   bool
	}
	run := func(stage string, cs []check) {
		t.Helper()
		for _, c := range cs {
			if (c.err == nil) != c.ok {
				t.Errorf("%s: %s: err = %v, want reachable = %v", stage, c.name, c.err, c.ok)
			}
			// Refused at once (a reset, an ICMP error), not left to time out.
			if c.err != nil && !strings.Contains(c.err.Error(), "refused") && !strings.Contains(c.err.Error(), "no route to host") {
				t.Errorf("%s: %s: %v, want refused at once", stage, c.name, c.err)
			}
		}
	}
	run("isolated", []check{
		{"B client to B server (same bridge)", reach(tp.inst[3], tp.insIP[2]+":8080"), true},
		{"A to A (same bridge)", reach(tp.inst[1], tp.insIP[0]+":8080"), true},
		{"A to A's service IP", reach(tp.inst[1], svcIP+":8080"), true},
		{"B to A by address", reach(tp.inst[3], tp.insIP[0]+":8080"), false},
		{"B to A by address, UDP", udp(tp.inst[3], tp.insIP[0]+":8081"), false},
		{"B to A's service IP", reach(tp.inst[3], svcIP+":8080"), false},
		{"A to B by address", reach(tp.inst[0], tp.insIP[2]+":8080"), false},
		{"node to A", reach(tp.node, tp.insIP[0]+":8080"), true},
		{"other node (outside the instance network) to A's service", reach(tp.peer, svcIP+":8080"), true},
	})

	// A allows i3.
	guards[0].Sources = append(guards[0].Sources, netip.MustParseAddr(tp.insIP[3]))
	must(t, "ApplyGuarded allow", tb.ApplyGuarded(svc, nil, Isolation{Guards: guards}))
	run("allowed", []check{
		{"i3 to A by address", reach(tp.inst[3], tp.insIP[0]+":8080"), true},
		{"i3 to A's service IP", reach(tp.inst[3], svcIP+":8080"), true},
		{"i2 (B, not allowed) to A", reach(tp.inst[2], tp.insIP[0]+":8080"), false},
		{"A to B still refused", reach(tp.inst[0], tp.insIP[2]+":8080"), false},
	})

	// Trusted sources pass every guard.
	must(t, "ApplyGuarded trusted", tb.ApplyGuarded(svc, nil, Isolation{Guards: guards, Trusted: addrs(tp.insIP[2])}))
	run("trusted", []check{
		{"i2 (trusted) to A", reach(tp.inst[2], tp.insIP[0]+":8080"), true},
		{"i2 (trusted) to A's service IP", reach(tp.inst[2], svcIP+":8080"), true},
		{"i3 (not trusted) to B still", reach(tp.inst[3], tp.insIP[2]+":8080"), true},
		{"A to B still refused", reach(tp.inst[0], tp.insIP[2]+":8080"), false},
	})

	must(t, "Apply without guards", tb.Apply(svc, nil))
	run("no guards", []check{
		{"B to A", reach(tp.inst[3], tp.insIP[0]+":8080"), true},
		{"A to B", reach(tp.inst[0], tp.insIP[2]+":8080"), true},
	})
}

func TestGuardValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		guards []Guard
		err    string
	}{
		{"IPv6 dest", []Guard{{Dests: addrs("fd00::1")}}, "guards[0].dests[0]"},
		{"IPv6 source", []Guard{{Dests: addrs("10.64.0.2"), Sources: addrs("10.64.0.3", "fd00::1")}}, "guards[0].sources[1]"},
		{"address in two guards", []Guard{{Dests: addrs("10.64.0.2")}, {Dests: addrs("10.64.0.3", "10.64.0.2")}}, "in guards[0] too"},
	} {
		if _, err := normGuards(tc.guards); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
		}
	}
	got, err := normGuards([]Guard{
		{Dests: addrs("10.64.0.9", "10.64.0.3", "10.64.0.3"), Sources: addrs("10.64.0.5", "10.64.0.1", "10.64.0.5")},
		{},
		{Dests: addrs("10.64.0.2")},
	})
	if err != nil || len(got) != 2 || got[0].Dests[0] != netip.MustParseAddr("10.64.0.2") ||
		len(got[1].Dests) != 2 || len(got[1].Sources) != 2 || got[1].Sources[0] != netip.MustParseAddr("10.64.0.1") {
		t.Fatalf("normGuards = %+v, %v", got, err)
	}
}
