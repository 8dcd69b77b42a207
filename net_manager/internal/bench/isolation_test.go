package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/thicket-edge/thicket/net_manager/internal/nft"
)

// BenchmarkIsolationCost: what tenant isolation costs on the cross-node
// paths of BenchmarkCrossNodeTCP (issue 20: "overlay throughput with the new
// defaults against the same numbers before"). The topology is
// BenchmarkCrossNodeTCP's with, as on real nodes, the same thicket nftables
// table on both nodes, and a third instance i3 (10.64.1.11, node 1) of
// another tenant. Three configurations of both nodes, switched between
// transfers (the switch is not timed):
//
//	isolated  thicket-net's default: nft.ApplyGuarded with the guards the
//	          daemon computes for two tenants (i1, i2 and the service IP:
//	          tenant A; i3: tenant B) plus isoTenants other tenants of
//	          isoPerTenant addresses each, the nodes' overlay addresses
//	          trusted; bridged IPv4 passes netfilter (br_netfilter on)
//	open      thicket-net --no-tenant-isolation: nft.Apply, no guards;
//	          br_netfilter still on (the kernel's default in a namespace
//	          whenever br_netfilter is built in or loaded)
//	bare      open, and br_netfilter off in both node namespaces
//	          (net.bridge.bridge-nf-call-iptables=0 and the bridge's
//	          nf_call_iptables 0): what the bridge's pass through the ip
//	          hooks costs, which isolation between instances of one node
//	          needs (README: Tenancy)
//
// Before anything is timed the setup checks that each configuration is what
// it claims: i3 → i2 is refused when isolated and reaches i2 when open or
// bare; i1 → i2 reaches i2 in all three.
//
// Sub-benchmarks overlay and service (the paths of BenchmarkCrossNodeTCP)
// report:
//
//	MB/s                 throughput, isolated (as BenchmarkCrossNodeTCP)
//	isolation_ratio      throughput isolated ÷ open: the median over isoRounds
//	                     rounds of one isoBytes transfer in each
//	                     configuration, the order of the three rotating
//	                     through all six permutations
//	isolation_rtt_ratio  round-trip time isolated ÷ open, likewise
//	brnf_ratio           throughput open ÷ bare (what br_netfilter costs)
//	isolated_MB/s        the throughput of the rounds' isolated transfers
//	open_MB/s            likewise, open
func BenchmarkIsolationCost(b *testing.B) {
	t := newTopology(b)
	s := newIsoSetup(b, t)
	for _, p := range []path{t.overlay, t.service} {
		b.Run(p.name, func(b *testing.B) {
			s.set(b, isolated)
			loopThroughput(b, p)
			s.rounds(b, p)
		})
	}
}

// netConfig is one configuration of both nodes (see BenchmarkIsolationCost).
type netConfig int

const (
	isolated netConfig = iota
	open
	bare
)

func (c netConfig) String() string { return [...]string{"isolated", "open", "bare"}[c] }

const (
	isoRounds    = 24 // 4 times each of the 6 orders of the 3 configurations
	isoBytes     = 64 << 20
	isoTenants   = 100
	isoPerTenant = 10
)

var inst3IP = netip.MustParseAddr("10.64.1.11")

// isoSetup is the topology of BenchmarkIsolationCost.
type isoSetup struct {
	t        *topology
	names    [2]string // node namespaces
	tables   [2]*nft.Tables
	services []nft.Service
	iso      nft.Isolation
	stranger path // i3 (tenant B) → i2 (tenant A)
	friend   path // i1 → i2, both tenant A
	cur      netConfig
}

func newIsoSetup(b *testing.B, t *topology) *isoSetup {
	b.Helper()
	s := &isoSetup{t: t, tables: [2]*nft.Tables{t.tables}, cur: -1,
		services: []nft.Service{{IP: serviceIP, Backends: []netip.Addr{inst2IP}}}}
	for i := range s.names {
		s.names[i] = fmt.Sprintf("%sn%d", t.id, i+1)
	}
	if err := inNS(t.nodes[1], func() (err error) {
		s.tables[1], err = nft.New(nft.Config{InstanceNet: instNet})
		return err
	}); err != nil {
		b.Fatalf("nft.New on node 2: %v", err)
	}
	tb := s.tables[1]
	b.Cleanup(func() {
		if err := tb.Delete(); err != nil {
			b.Errorf("cleanup: nft delete on node 2: %v", err)
		}
		tb.Close()
	})

	a, err := t.ovs[0].Attach("bench3", inst3IP)
	if err != nil {
		b.Fatalf("Attach i3 on node 1: %v", err)
	}
	ns3, err := netns.GetFromPath(a.Netns)
	if err != nil {
		b.Fatalf("open %s: %v", a.Netns, err)
	}
	b.Cleanup(func() { ns3.Close() })
	s.stranger = path{"i3 (tenant B) to i2 (tenant A)", ns3, inst2IP}
	s.friend = path{"i1 to i2 (tenant A)", t.overlay.from, inst2IP}

	// The guards thicket-net's daemon computes for these tenants (one
	// guard per tenant: its addresses, reachable from its own), and the
	// nodes' own overlay addresses (VXLAN and bridge) trusted.
	s.iso.Guards = []nft.Guard{
		{Dests: []netip.Addr{inst1IP, inst2IP, serviceIP}, Sources: []netip.Addr{inst1IP, inst2IP}},
		{Dests: []netip.Addr{inst3IP}, Sources: []netip.Addr{inst3IP}},
	}
	next := netip.MustParseAddr("10.64.100.0")
	for range isoTenants {
		var g nft.Guard
		for range isoPerTenant {
			g.Dests = append(g.Dests, next)
			next = next.Next()
		}
		g.Sources = g.Dests
		s.iso.Guards = append(s.iso.Guards, g)
	}
	for _, p := range []netip.Prefix{subnet1, subnet2} {
		s.iso.Trusted = append(s.iso.Trusted, p.Addr(), p.Addr().Next())
	}

	// Each configuration does what it claims.
	for _, c := range []netConfig{open, bare, isolated} {
		s.set(b, c)
		if _, err := s.friend.transfer(perOp); err != nil {
			b.Fatalf("%s: %v", c, err)
		}
		_, err := s.stranger.transfer(perOp)
		switch {
		case c == isolated && err == nil:
			b.Fatalf("%s: %s got through: the guards are not in effect", c, s.stranger.name)
		case c == isolated && !errors.Is(err, syscall.ECONNREFUSED):
			b.Fatalf("%s: %s: %v, want the connection refused by a guard", c, s.stranger.name, err)
		case c != isolated && err != nil:
			b.Fatalf("%s: %v", c, err)
		}
	}
	return s
}

// set puts both nodes in configuration c.
func (s *isoSetup) set(b *testing.B, c netConfig) {
	b.Helper()
	if c == s.cur {
		return
	}
	brnf := "1"
	if c == bare {
		brnf = "0"
	}
	for i, tb := range s.tables {
		var err error
		if c == isolated {
			err = tb.ApplyGuarded(s.services, nil, s.iso)
		} else {
			err = tb.Apply(s.services, nil)
		}
		if err != nil {
			b.Fatalf("%s: node %d: %v", c, i+1, err)
		}
		if err := setBridgeNF(s.t.nodes[i], s.names[i], brnf); err != nil {
			b.Fatalf("%s: node %d: %v", c, i+1, err)
		}
	}
	s.cur = c
}

const brnfSysctl = "/proc/sys/net/bridge/bridge-nf-call-iptables"

// setBridgeNF turns br_netfilter's pass of bridged IPv4 through the ip
// hooks on ("1") or off ("0") in a node's namespace: the namespace's sysctl
// and the overlay bridge's own option (the kernel applies either).
func setBridgeNF(ns netns.NsHandle, name, v string) error {
	if err := inNS(ns, func() error {
		if err := os.WriteFile(brnfSysctl, []byte(v), 0); err != nil {
			return err
		}
		got, err := os.ReadFile(brnfSysctl)
		if err == nil && strings.TrimSpace(string(got)) != v {
			err = fmt.Errorf("%s is %q after writing %q", brnfSysctl, got, v)
		}
		return err
	}); err != nil {
		return fmt.Errorf("br_netfilter (the kernel needs CONFIG_BRIDGE_NETFILTER): %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "-n", name, "link", "set", "thk0", "type", "bridge", "nf_call_iptables", v).CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set thk0 type bridge nf_call_iptables %s: %v: %s", v, err, out)
	}
	return nil
}

// perms are the six orders of the three configurations.
var perms = [6][3]netConfig{
	{isolated, open, bare}, {bare, open, isolated}, {open, bare, isolated},
	{isolated, bare, open}, {bare, isolated, open}, {open, isolated, bare},
}

// rounds measures p in the three configurations, isoRounds times, and
// reports the paired ratios.
func (s *isoSetup) rounds(b *testing.B, p path) {
	var isoRatios, rttRatios, brnfRatios []float64
	var bytes, isoTime, openTime float64
	for i := range isoRounds {
		var d, rtt [3]time.Duration
		for _, c := range perms[i%len(perms)] {
			s.set(b, c)
			var err error
			if d[c], err = p.transfer(isoBytes); err != nil {
				b.Fatalf("%s: %v", c, err)
			}
			if rtt[c], err = p.rtt(); err != nil {
				b.Fatalf("%s: %v", c, err)
			}
		}
		isoRatios = append(isoRatios, d[open].Seconds()/d[isolated].Seconds())
		rttRatios = append(rttRatios, float64(rtt[isolated])/float64(rtt[open]))
		brnfRatios = append(brnfRatios, d[bare].Seconds()/d[open].Seconds())
		bytes += isoBytes
		isoTime += d[isolated].Seconds()
		openTime += d[open].Seconds()
	}
	s.set(b, isolated)
	b.ReportMetric(median(isoRatios), "isolation_ratio")
	b.ReportMetric(median(rttRatios), "isolation_rtt_ratio")
	b.ReportMetric(median(brnfRatios), "brnf_ratio")
	b.ReportMetric(bytes/1e6/isoTime, "isolated_MB/s")
	b.ReportMetric(bytes/1e6/openTime, "open_MB/s")
}
