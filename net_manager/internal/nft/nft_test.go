package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"
)

var testCfg = Config{
	InstanceNet: netip.MustParsePrefix("10.64.0.0/16"),
	LocalNet:    netip.MustParsePrefix("10.64.0.0/24"),
}

// count makes n connections from ns to addr and returns how many each server
// address answered.
func count(t *testing.T, from *nsNode, addr string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		srv, _, err := get(from, addr)
		if err != nil {
			t.Fatalf("connection %d from %s to %s: %v", i, from.name, addr, err)
		}
		got[srv]++
	}
	return got
}

func TestServiceRoundRobin(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(testCfg)
	svc := []Service{{IP: netip.MustParseAddr(svcIP), Backends: addrs(tp.insIP[:3]...)}}
	must(t, "Apply", tb.Apply(svc, nil))
	t.Logf("nft list table ip thicket:\n%s", tp.nft("list", "table", "ip", "thicket"))

	want := map[string]int{tp.insIP[0]: 10, tp.insIP[1]: 10, tp.insIP[2]: 10}
	for _, from := range []struct {
		name string
		ns   *nsNode
	}{
		{"node itself (output)", tp.node},
		{"instance on the bridge (prerouting)", tp.inst[3]},
		{"other node (prerouting)", tp.peer},
	} {
		got := count(t, from.ns, svcIP+":8080", 30)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("from %s: 30 connections to %s went to %v, want round robin %v", from.name, svcIP, got, want)
		}
	}
	// The other node reaches the service without masquerade: backends see
	// its address.
	if _, client, err := get(tp.peer, svcIP+":8080"); err != nil || client != peerAddr {
		t.Errorf("from peer: backend saw client %q (err %v), want %s", client, err, peerAddr)
	}

	// Scale down: the removed backend gets no new connection.
	svc[0].Backends = addrs(tp.insIP[1], tp.insIP[0]) // order must not matter
	must(t, "Apply 2 backends", tb.Apply(svc, nil))
	tp.resetHits()
	count(t, tp.node, svcIP+":8080", 15)
	count(t, tp.inst[3], svcIP+":8080", 15)
	if h := tp.hits(); h[2] != 0 || h[0] != 15 || h[1] != 15 {
		t.Errorf("after scale down, hits per backend = %v, want [15 15 0]", h)
	}
}

func TestPublishedPort(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(testCfg)
	ports := []PortMap{
		{HostPort: 18080, Proto: "tcp", IP: netip.MustParseAddr(tp.insIP[0]), Port: 8080},
		{HostPort: 18081, Proto: "udp", IP: netip.MustParseAddr(tp.insIP[1]), Port: 8081},
	}
	must(t, "Apply", tb.Apply(nil, ports))

	for _, c := range []struct {
		name, addr, wantClient string
		from                   *nsNode
	}{
		{"node itself, own address", nodeAddr, nodeAddr, tp.node},
		{"node itself, bridge address", "10.64.0.1", "10.64.0.1", tp.node},
		{"other host", nodeAddr, peerAddr, tp.peer},
		{"instance (hairpin)", nodeAddr, "10.64.0.1", tp.inst[3]},
		{"backend itself (hairpin)", nodeAddr, "10.64.0.1", tp.inst[0]},
	} {
		srv, client, err := get(c.from, c.addr+":18080")
		if err != nil || srv != tp.insIP[0] || client != c.wantClient {
			t.Errorf("%s: %s:18080 answered by %q seeing client %q (err %v); want %s seeing %s",
				c.name, c.addr, srv, client, err, tp.insIP[0], c.wantClient)
		}
	}
	// Only the published port is translated.
	if _, _, err := get(tp.peer, nodeAddr+":18082"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("unpublished port: err = %v, want connection refused", err)
	}
	for _, from := range []*nsNode{tp.node, tp.peer} {
		c, err := dialUDP(from, nodeAddr+":18081")
		must(t, "dial udp", err)
		srv, err := askUDP(c)
		c.Close()
		if err != nil || srv != tp.insIP[1] {
			t.Errorf("udp from %s: answered by %q (err %v), want %s", from.name, srv, err, tp.insIP[1])
		}
	}
}

func TestNoBackendsRefused(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(testCfg)
	must(t, "Apply", tb.Apply([]Service{
		{IP: netip.MustParseAddr("10.30.0.11")},
		{IP: netip.MustParseAddr(svcIP), Backends: addrs(tp.insIP[0])},
	}, nil))

	// An empty service and an address of the range that is no service at all
	// are both refused at once: TCP reset, ICMP port unreachable for UDP.
	for _, ip := range []string{"10.30.0.11", "10.30.9.9"} {
		for _, from := range []*nsNode{tp.node, tp.inst[3], tp.peer} {
			start := time.Now()
			_, _, err := get(from, ip+":8080")
			if el := time.Since(start); !errors.Is(err, syscall.ECONNREFUSED) || el > time.Second {
				t.Errorf("tcp %s from %s: err = %v after %v, want connection refused at once", ip, from.name, err, el)
			}
			// UDP: a datagram from the node itself is dropped in its output
			// path, so the send fails with EPERM; a forwarded one gets an
			// ICMP port unreachable, which a connected socket reports as
			// connection refused.
			want := syscall.ECONNREFUSED
			if from == tp.node {
				want = syscall.EPERM
			}
			c, err := dialUDP(from, ip+":8081")
			must(t, "dial udp", err)
			start = time.Now()
			_, err = askUDP(c)
			c.Close()
			if el := time.Since(start); !errors.Is(err, want) || el > time.Second {
				t.Errorf("udp %s from %s: err = %v after %v, want %v at once", ip, from.name, err, el, want)
			}
		}
	}
	// The service with a backend still works.
	if srv, _, err := get(tp.inst[3], svcIP+":8080"); err != nil || srv != tp.insIP[0] {
		t.Errorf("service with one backend: %q %v", srv, err)
	}
}

func TestMasquerade(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(testCfg)
	must(t, "Apply", tb.Apply(nil, nil))
	// Leaving the instance network: masqueraded to the node's address.
	if _, client, err := get(tp.inst[0], peerAddr+":9000"); err != nil || client != nodeAddr {
		t.Errorf("instance to outside: server saw %q (err %v), want %s", client, err, nodeAddr)
	}
	// Instance to instance: untouched.
	if _, client, err := get(tp.inst[3], tp.insIP[1]+":8080"); err != nil || client != "10.64.0.5" {
		t.Errorf("instance to instance: server saw %q (err %v), want 10.64.0.5", client, err)
	}
	// Without InstanceNet, no masquerade.
	tb2 := tp.newTables(Config{Table: "thicket2"})
	must(t, "Delete first table", tb.Delete())
	must(t, "Apply second table", tb2.Apply(nil, nil))
	if _, client, err := get(tp.inst[0], peerAddr+":9000"); err != nil || client != tp.insIP[0] {
		t.Errorf("no InstanceNet: server saw %q (err %v), want %s", client, err, tp.insIP[0])
	}
}

// Without LocalNet (and without br_netfilter), an instance cannot reach a
// service whose backend sits on the same bridge: the backend answers it
// directly over the bridge, from its own address, and the client drops that.
// This is why the daemon sets LocalNet.
func TestHairpinNeedsLocalNet(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(Config{InstanceNet: testCfg.InstanceNet})
	must(t, "Apply", tb.Apply([]Service{{IP: netip.MustParseAddr(svcIP), Backends: addrs(tp.insIP[0])}}, nil))
	if srv, _, err := getWithin(tp.inst[3], svcIP+":8080", 500*time.Millisecond); err == nil {
		t.Fatalf("without LocalNet the same-bridge instance reached %s: is br_netfilter active?", srv)
	}
	if srv, _, err := get(tp.peer, svcIP+":8080"); err != nil || srv != tp.insIP[0] {
		t.Errorf("from another node (routed both ways): %q %v", srv, err)
	}
}

var tableHandleRE = regexp.MustCompile(`table ip thicket \{ # handle (\d+)`)

func (tp *topo) tableHandle() string {
	tp.t.Helper()
	m := tableHandleRE.FindStringSubmatch(tp.nft("-a", "list", "table", "ip", "thicket"))
	if m == nil {
		tp.t.Fatal("no handle in nft -a list table output")
	}
	return m[1]
}

// objHandle returns the handle of the chain or set name, and the handles of
// the rules in it.
func (tp *topo) objHandles(kind, name string) string {
	tp.t.Helper()
	return tp.nft("-a", "list", kind, "ip", "thicket", name)
}

func TestApplyIdempotentAndDelete(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(testCfg)
	svcs := []Service{
		{IP: netip.MustParseAddr(svcIP), Backends: addrs(tp.insIP[0], tp.insIP[1], tp.insIP[2])},
		{IP: netip.MustParseAddr("10.30.0.11")},
	}
	ports := []PortMap{
		{HostPort: 18080, Proto: "tcp", IP: netip.MustParseAddr(tp.insIP[0]), Port: 8080},
		{HostPort: 5353, Proto: "udp", IP: netip.MustParseAddr(tp.insIP[1]), Port: 53},
	}
	must(t, "Apply", tb.Apply(svcs, ports))
	// With -a, every rule shows its handle: a rewrite changes them.
	withHandles := tp.nft("-a", "list", "table", "ip", "thicket")
	listing := tp.nft("list", "table", "ip", "thicket")

	// Same input, other order: nothing is sent to the kernel.
	rev := []Service{{IP: svcs[1].IP}, {IP: svcs[0].IP, Backends: slices.Clone(svcs[0].Backends)}}
	slices.Reverse(rev[1].Backends)
	must(t, "Apply again", tb.Apply(rev, []PortMap{ports[1], ports[0]}))
	if now := tp.nft("-a", "list", "table", "ip", "thicket"); now != withHandles {
		t.Errorf("unchanged input rewrote the table:\n%s\nvs\n%s", withHandles, now)
	}
	// A new Tables (a restarted daemon) rewrites it, to the same rules.
	tb2 := tp.newTables(testCfg)
	must(t, "Apply from new Tables", tb2.Apply(rev, []PortMap{ports[1], ports[0]}))
	if l := tp.nft("list", "table", "ip", "thicket"); l != listing {
		t.Errorf("same input in another order gave another table:\n%s\nvs\n%s", listing, l)
	}
	if tp.nft("-a", "list", "table", "ip", "thicket") == withHandles {
		t.Errorf("a new Tables did not rewrite the table")
	}
	// The first Apply of a Tables rewrote the rules, in place.
	h1 := tp.tableHandle()
	must(t, "Apply changed", tb2.Apply(svcs[:1], ports[:1]))
	if l := tp.nft("list", "table", "ip", "thicket"); l == listing || strings.Contains(l, "10.30.0.11") || strings.Contains(l, "5353") {
		t.Errorf("changed input did not change the table:\n%s", l)
	}
	if h := tp.tableHandle(); h != h1 {
		t.Errorf("table replaced (handle %s -> %s) instead of updated in place", h1, h)
	}
	// If the table vanished, the same input is applied again.
	tp.nft("delete", "table", "ip", "thicket")
	must(t, "Apply after external delete", tb2.Apply(svcs[:1], ports[:1]))
	tp.tableHandle()

	must(t, "Delete", tb2.Delete())
	if out := tp.nft("list", "tables"); strings.Contains(out, "thicket") {
		t.Errorf("table still there after Delete:\n%s", out)
	}
	must(t, "Delete again", tb2.Delete())
	// With the table gone, the service IP is not translated any more.
	if srv, _, err := getWithin(tp.node, svcIP+":8080", 300*time.Millisecond); err == nil {
		t.Errorf("after Delete, %s still answered by %s", svcIP, srv)
	}
}

// An Apply that changes one service leaves the others' chains alone: their
// round robin continues instead of restarting at the first backend, and the
// base chains and sets are the same objects (updated in place).
func TestApplyKeepsUnchangedServices(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(testCfg)
	a := Service{IP: netip.MustParseAddr(svcIP), Backends: addrs(tp.insIP[:3]...)}
	other := Service{IP: netip.MustParseAddr("10.30.0.20"), Backends: addrs(tp.insIP[0])}
	must(t, "Apply", tb.Apply([]Service{a, other}, nil))
	svcA := tp.objHandles("chain", "svc-"+svcIP)
	pre := tp.objHandles("chain", "prerouting")
	set := tp.objHandles("map", "services")
	setHandle := regexp.MustCompile(`# handle \d+`).FindString(set)
	preHandle := regexp.MustCompile(`chain prerouting \{ # handle \d+`).FindString(pre)

	first, _, err := get(tp.node, svcIP+":8080")
	must(t, "get", err)
	other.Backends = addrs(tp.insIP[1], tp.insIP[2])
	must(t, "Apply other change", tb.Apply([]Service{a, other}, nil))
	if now := tp.objHandles("chain", "svc-"+svcIP); now != svcA {
		t.Errorf("unchanged service chain was rewritten:\n%s\nvs\n%s", svcA, now)
	}
	second, _, err := get(tp.node, svcIP+":8080")
	must(t, "get", err)
	if first != tp.insIP[0] || second != tp.insIP[1] {
		t.Errorf("round robin across an unrelated Apply went %s, %s; want %s, %s", first, second, tp.insIP[0], tp.insIP[1])
	}
	if now := tp.objHandles("chain", "prerouting"); !strings.Contains(now, preHandle) || now == pre {
		t.Errorf("prerouting: want the same chain (%s) with new rules:\n%s\nvs\n%s", preHandle, pre, now)
	}
	if now := tp.objHandles("map", "services"); !strings.Contains(now, setHandle) {
		t.Errorf("services map was recreated (want %s):\n%s", setHandle, now)
	}
	if l := tp.nft("list", "chain", "ip", "thicket", "svc-10.30.0.20"); !strings.Contains(l, "numgen inc mod 2") {
		t.Errorf("changed service chain not rewritten:\n%s", l)
	}
}

func TestUDPConntrackMovesOnScaleDown(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(testCfg)
	svc := []Service{{IP: netip.MustParseAddr(svcIP), Backends: addrs(tp.insIP[:2]...)}}
	must(t, "Apply", tb.Apply(svc, nil))
	c, err := dialUDP(tp.node, svcIP+":8081")
	must(t, "dial udp", err)
	defer c.Close()
	first, err := askUDP(c)
	must(t, "udp ask", err)
	for i := 0; i < 3; i++ { // one flow, one backend
		if again, err := askUDP(c); err != nil || again != first {
			t.Fatalf("udp flow moved from %s to %q (err %v) without a change", first, again, err)
		}
	}
	var rest []netip.Addr
	for _, ip := range tp.insIP[:2] {
		if ip != first {
			rest = append(rest, netip.MustParseAddr(ip))
		}
	}
	svc[0].Backends = rest
	must(t, "Apply without "+first, tb.Apply(svc, nil))
	if now, err := askUDP(c); err != nil || now != rest[0].String() {
		t.Errorf("after removing %s the flow answered from %q (err %v), want %s", first, now, err, rest[0])
	}
}

func TestFlushConntrack(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(testCfg)
	must(t, "Apply", tb.Apply([]Service{{IP: netip.MustParseAddr(svcIP), Backends: addrs(tp.insIP[0])}}, nil))
	c, err := dialUDP(tp.node, svcIP+":8081")
	must(t, "dial udp", err)
	defer c.Close()
	_, err = askUDP(c)
	must(t, "udp ask", err)
	n, err := tb.FlushConntrack(netip.MustParseAddr(tp.insIP[0]))
	must(t, "FlushConntrack", err)
	if n < 1 {
		t.Errorf("FlushConntrack deleted %d entries, want at least 1", n)
	}
}

func TestValidation(t *testing.T) {
	requireRoot(t)
	tb, err := New(Config{Table: "thicket-validation-unused"})
	must(t, "New", err)
	defer tb.Close()
	ip := netip.MustParseAddr
	for _, c := range []struct {
		name     string
		services []Service
		ports    []PortMap
		want     string
	}{
		{"ipv6 service", []Service{{IP: ip("fd00::1")}}, nil, "services[0].ip"},
		{"zero service", []Service{{}}, nil, "services[0].ip"},
		{"dup service", []Service{{IP: ip(svcIP)}, {IP: ip(svcIP)}}, nil, "services[1].ip"},
		{"bad backend", []Service{{IP: ip(svcIP), Backends: []netip.Addr{ip("10.64.0.2"), {}}}}, nil, "services[0].backends[1]"},
		{"proto", nil, []PortMap{{HostPort: 80, Proto: "sctp", IP: ip("10.64.0.2"), Port: 80}}, "ports[0].proto"},
		{"host port", nil, []PortMap{{HostPort: 0, Proto: "tcp", IP: ip("10.64.0.2"), Port: 80}}, "ports[0].host_port"},
		{"port", nil, []PortMap{{HostPort: 80, Proto: "tcp", IP: ip("10.64.0.2"), Port: 70000}}, "ports[0].port"},
		{"ip", nil, []PortMap{{HostPort: 80, Proto: "tcp", Port: 80}}, "ports[0].ip"},
		{"dup port", nil, []PortMap{
			{HostPort: 80, Proto: "tcp", IP: ip("10.64.0.2"), Port: 80},
			{HostPort: 80, Proto: "TCP", IP: ip("10.64.0.3"), Port: 80}}, "ports[1]"},
	} {
		err := tb.Apply(c.services, c.ports)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one naming %s", c.name, err, c.want)
		}
	}
	// Nothing reached the kernel.
	conn, err := nftables.New()
	must(t, "nftables conn", err)
	if _, err := conn.ListTableOfFamily("thicket-validation-unused", nftables.TableFamilyIPv4); err == nil {
		t.Errorf("a rejected input created the table")
	}
	if _, err := New(Config{InstanceNet: netip.MustParsePrefix("fd00::/64")}); err == nil {
		t.Errorf("New accepted an IPv6 InstanceNet")
	}
}

func bigInput(nsvc, nback int) []Service {
	svcs := make([]Service, nsvc)
	for i := range svcs {
		svcs[i].IP = netip.AddrFrom4([4]byte{10, 30, byte(i >> 8), byte(i)})
		for j := 0; j < nback; j++ {
			k := i*nback + j
			svcs[i].Backends = append(svcs[i].Backends, netip.AddrFrom4([4]byte{10, 64, byte(k >> 8), byte(k)}))
		}
	}
	return svcs
}

func TestApplyManyServices(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(testCfg)
	timed := func(what string, svcs []Service) {
		t.Helper()
		start := time.Now()
		must(t, what, tb.Apply(svcs, nil))
		t.Logf("%s: %v", what, time.Since(start))
	}
	svcs := bigInput(1000, 3)
	svcs[999].Backends = addrs(tp.insIP[:3]...) // 10.30.3.231 is live
	timed("Apply 1000 services x 3 backends", svcs)
	svcs[0].Backends = svcs[0].Backends[:2]
	timed("Apply with one of 1000 changed", svcs)

	conn, err := nftables.New(nftables.WithNetNSFd(int(tp.node.h)))
	must(t, "nftables conn", err)
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	must(t, "list chains", err)
	n := 0
	for _, c := range chains {
		if strings.HasPrefix(c.Name, svcChainPrefix) {
			n++
		}
	}
	if n != 1000 {
		t.Errorf("%d service chains, want 1000", n)
	}
	got := count(t, tp.inst[3], "10.30.3.231:8080", 9)
	if len(got) != 3 {
		t.Errorf("big table: 9 connections reached %v, want all 3 backends", got)
	}

	// 10,000: the sets' elements span several netlink messages and the
	// batch outgrows the default socket buffers, also for a small change.
	big := bigInput(10000, 3)
	timed("Apply 10000 services x 3 backends", big)
	big[5].Backends = big[5].Backends[:1]
	timed("Apply with one of 10000 changed", big)
	timed("Apply back to 1000", svcs)
	if srv, _, err := get(tp.inst[3], "10.30.3.231:8080"); err != nil || srv == "" {
		t.Errorf("after shrinking: %q %v", srv, err)
	}
}

// benchApply measures Apply of 1000 services x 3 backends in a namespace of
// its own; change(i, svcs) alters the input before iteration i.
func benchApply(b *testing.B, change func(i int, svcs []Service)) {
	requireRoot(b)
	ns := &nsNode{name: "bench"} // unnamed, without the test topology
	if err := onThread(func() (err error) {
		ns.h, err = netns.New()
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer ns.h.Close()
	var tb *Tables
	if err := inNS(ns, func() (err error) { tb, err = New(testCfg); return err }); err != nil {
		b.Fatal(err)
	}
	defer tb.Close()
	svcs := bigInput(1000, 3)
	if err := tb.Apply(svcs, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		change(i, svcs)
		if err := tb.Apply(svcs, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// Every service's backends change: all 1000 service chains are rewritten.
func BenchmarkApply1000x3AllChanged(b *testing.B) {
	benchApply(b, func(i int, svcs []Service) {
		for j := range svcs {
			svcs[j].Backends[0] = netip.AddrFrom4([4]byte{10, 65 + byte(i%2), byte(j >> 8), byte(j)})
		}
	})
}

// One service changes: the common case when an instance comes or goes.
func BenchmarkApply1000x3OneChanged(b *testing.B) {
	benchApply(b, func(i int, svcs []Service) {
		svcs[i%1000].Backends[0] = netip.AddrFrom4([4]byte{10, 65 + byte(i%2), 0, 1})
	})
}

// Apply replaces the table in one transaction: connections made while it is
// replaced over and over never find the service untranslated (which would
// be refused by the reject rules or time out).
func TestApplyIsAtomic(t *testing.T) {
	tp := newTopo(t)
	tb := tp.newTables(testCfg)
	svc := func(n int) []Service {
		return []Service{{IP: netip.MustParseAddr(svcIP), Backends: addrs(tp.insIP[:n]...)}}
	}
	must(t, "Apply", tb.Apply(svc(3), nil))
	const replacements = 40
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; n < replacements; n++ {
			if err := tb.Apply(svc(2+n%2), nil); err != nil {
				t.Errorf("Apply %d: %v", n, err)
				return
			}
		}
	}()
	conns := 0
	for running := true; running; conns++ {
		select {
		case <-done:
			running = false
		default:
		}
		if _, _, err := get(tp.node, svcIP+":8080"); err != nil {
			t.Errorf("connection %d during replacements: %v", conns, err)
		}
	}
	if conns < 2*replacements {
		t.Errorf("only %d connections during %d replacements", conns, replacements)
	}
	t.Logf("%d connections during %d table replacements", conns, replacements)
}

// Apply takes over a table of the same name whatever it holds (an older
// layout, hand edits): the result is the same as on a fresh table.
func TestApplyTakesOverForeignTable(t *testing.T) {
	tp := newTopo(t)
	svcs := []Service{
		{IP: netip.MustParseAddr(svcIP), Backends: addrs(tp.insIP[:3]...)},
		{IP: netip.MustParseAddr("10.30.0.11")},
	}
	ports := []PortMap{{HostPort: 18080, Proto: "tcp", IP: netip.MustParseAddr(tp.insIP[0]), Port: 8080}}
	fresh := tp.newTables(testCfg)
	must(t, "Apply", fresh.Apply(svcs, ports))
	want := tp.nft("list", "table", "ip", "thicket")
	must(t, "Delete", fresh.Delete())

	cmd := exec.Command("ip", "netns", "exec", tp.node.name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(`table ip thicket {
	set services { type ipv4_addr; elements = { 10.30.0.10 } }
	set stale { type ipv4_addr; }
	chain junk { ip daddr @stale drop; }
	chain svc-10.30.0.10 { type filter hook input priority 0; ip daddr @services accept; jump junk; }
	chain prerouting { type nat hook prerouting priority 10; ip daddr 10.30.0.10 dnat to 10.64.0.9; }
	chain output { type nat hook output priority -100; policy accept; ip daddr 10.30.0.10 dnat to 10.64.0.9; }
	chain filter_forward { type filter hook forward priority 0; policy drop; }
}`)
	out, err := cmd.CombinedOutput()
	must(t, "load foreign table: "+string(out), err)

	tb := tp.newTables(testCfg)
	must(t, "Apply over foreign table", tb.Apply(svcs, ports))
	got := tp.nft("list", "table", "ip", "thicket")
	norm := func(s string) []string { // chain order may differ
		var blocks []string
		for _, b := range strings.Split(s, "\n\n") {
			blocks = append(blocks, strings.TrimSpace(b))
		}
		slices.Sort(blocks)
		return blocks
	}
	if !slices.Equal(norm(got), norm(want)) {
		t.Errorf("after taking over:\n%s\nwant:\n%s", got, want)
	}
	if c := count(t, tp.inst[3], svcIP+":8080", 3); len(c) != 3 {
		t.Errorf("service after take-over reached %v", c)
	}
}
