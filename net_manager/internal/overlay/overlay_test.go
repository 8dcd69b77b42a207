package overlay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/net_manager/internal/netnsfs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// These tests build a throwaway topology: two "node" namespaces joined by a
// veth pair as underlay; each node's overlay is set up inside its namespace.
// The host's own namespace is never touched.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces, veth, bridge, vxlan): run go test as root")
	}
	for _, tool := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s (iproute2, iputils-ping): %v", tool, err)
		}
	}
}

type testNode struct {
	ns     string // name of the node's namespace under /run/netns
	cfg    Config
	handle netns.NsHandle
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// newTopology creates namespaces <id>n1 and <id>n2 joined by veth u1/u2
// (192.168.250.1/24, .2/24); instance namespaces get the prefixes <id>-n1-
// and <id>-n2-. Everything named <id>* under /run/netns is removed at cleanup.
func newTopology(t *testing.T) (*testNode, *testNode) {
	t.Helper()
	requireRoot(t)
	id := fmt.Sprintf("thkt%d", os.Getpid()%100000)
	t.Cleanup(func() { cleanupNamespaces(t, id) })
	cleanupNamespaces(t, id) // leftovers of a killed run with the same pid
	nodes := make([]*testNode, 2)
	for i := range nodes {
		n := &testNode{
			ns: fmt.Sprintf("%sn%d", id, i+1),
			cfg: Config{
				Subnet:      netip.MustParsePrefix(fmt.Sprintf("10.64.%d.0/24", i+1)),
				Underlay:    netip.MustParseAddr(fmt.Sprintf("192.168.250.%d", i+1)),
				NetnsPrefix: fmt.Sprintf("%s-n%d-", id, i+1),
			},
		}
		run(t, "ip", "netns", "add", n.ns)
		h, err := netns.GetFromName(n.ns)
		if err != nil {
			t.Fatal(err)
		}
		n.handle = h
		t.Cleanup(func() { h.Close() })
		nodes[i] = n
	}
	n1, n2 := nodes[0], nodes[1]
	run(t, "ip", "link", "add", "u1", "netns", n1.ns, "type", "veth", "peer", "name", "u2", "netns", n2.ns)
	for i, n := range nodes {
		dev := fmt.Sprintf("u%d", i+1)
		run(t, "ip", "-n", n.ns, "addr", "add", fmt.Sprintf("192.168.250.%d/24", i+1), "dev", dev)
		run(t, "ip", "-n", n.ns, "link", "set", dev, "up")
		run(t, "ip", "-n", n.ns, "link", "set", "lo", "up")
	}
	return n1, n2
}

func cleanupNamespaces(t *testing.T, id string) {
	names, _ := filepath.Glob(filepath.Join(netnsDir, id+"*"))
	// Instance namespaces first (their veths die with them), nodes last.
	for _, p := range names {
		if strings.Contains(filepath.Base(p), "-") {
			if err := netnsfs.Delete(filepath.Base(p)); err != nil {
				t.Errorf("cleanup %s: %v", p, err)
			}
		}
	}
	for _, p := range names {
		if !strings.Contains(filepath.Base(p), "-") {
			if out, err := exec.Command("ip", "netns", "del", filepath.Base(p)).CombinedOutput(); err != nil {
				t.Errorf("cleanup %s: %v %s", p, err, out)
			}
		}
	}
}

// setup runs Setup inside the node's namespace, as the daemon would.
func (n *testNode) setup(t *testing.T, cfg Config) (*Overlay, error) {
	t.Helper()
	var o *Overlay
	err := inNetns(n.handle, func() error {
		var err error
		o, err = Setup(cfg)
		return err
	})
	if o != nil {
		t.Cleanup(func() { o.Close() })
	}
	return o, err
}

func (n *testNode) mustSetup(t *testing.T) *Overlay {
	t.Helper()
	o, err := n.setup(t, n.cfg)
	if err != nil {
		t.Fatalf("Setup in %s: %v", n.ns, err)
	}
	return o
}

// setAll is SetPeers that wants every peer applied.
func (o *Overlay) setAll(peers ...Peer) error {
	refused, err := o.SetPeers(peers)
	if len(refused) > 0 {
		return fmt.Errorf("refused: %v", refused)
	}
	return err
}

func (o *Overlay) peer() Peer {
	return Peer{Subnet: o.cfg.Subnet, VTEPMAC: o.VTEPMAC(), Underlay: o.cfg.Underlay}
}

func ping(from string, to netip.Addr) error {
	out, err := exec.Command("ip", "netns", "exec", filepath.Base(from), "ping", "-c1", "-W2", to.String()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %v from %s: %v\n%s", to, from, err, out)
	}
	return nil
}

// mustPing allows a retry: the very first packet may wait for ARP.
func mustPing(t *testing.T, from string, to netip.Addr) {
	t.Helper()
	var err error
	for range 3 {
		if err = ping(from, to); err == nil {
			return
		}
	}
	t.Fatal(err)
}

func link(t *testing.T, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return l
}

func nsHandle(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func addrs(t *testing.T, h *netlink.Handle, l netlink.Link) []string {
	t.Helper()
	as, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.IPNet.String())
	}
	return out
}

// checkInstance verifies eth0, lo and the default route inside an instance.
func checkInstance(t *testing.T, o *Overlay, a Attachment) {
	t.Helper()
	ih := nsHandle(t, a.Netns)
	eth := link(t, ih, "eth0")
	want := fmt.Sprintf("%v/%d", a.IP, o.cfg.Subnet.Bits())
	if got := addrs(t, ih, eth); len(got) != 1 || got[0] != want {
		t.Errorf("%s eth0 addresses %v, want [%s]", a.Netns, got, want)
	}
	if eth.Attrs().Flags&net.FlagUp == 0 || eth.Attrs().MTU != 1450 {
		t.Errorf("%s eth0 flags %v mtu %d, want up, 1450", a.Netns, eth.Attrs().Flags, eth.Attrs().MTU)
	}
	if lo := link(t, ih, "lo"); lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("%s lo is down", a.Netns)
	}
	routes, err := ih.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var def bool
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.Equal(net.IP(o.gw.AsSlice())) && r.LinkIndex == eth.Attrs().Index {
			def = true
		}
	}
	if !def {
		t.Errorf("%s: no default route via %v dev eth0 in %v", a.Netns, o.gw, routes)
	}
}

type peerEntries struct{ routes, neighs, fdb []string }

func (o *Overlay) entries(t *testing.T) peerEntries {
	t.Helper()
	vx := link(t, o.h, o.cfg.VXLAN)
	var e peerEntries
	routes, err := o.h.RouteList(vx, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		e.routes = append(e.routes, fmt.Sprintf("%v via %v onlink=%v", r.Dst, r.Gw, r.Flags&int(netlink.FLAG_ONLINK) != 0))
	}
	ns, err := o.h.NeighList(vx.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		e.neighs = append(e.neighs, fmt.Sprintf("%v %v permanent=%v", n.IP, n.HardwareAddr, n.State&unix.NUD_PERMANENT != 0))
	}
	fdb, err := o.h.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range fdb {
		if n.IP != nil {
			e.fdb = append(e.fdb, fmt.Sprintf("%v dst %v permanent=%v", n.HardwareAddr, n.IP, n.State&unix.NUD_PERMANENT != 0))
		}
	}
	return e
}

func TestOverlayTwoNodes(t *testing.T) {
	n1, n2 := newTopology(t)

	// Setup, twice: the second adopts the same devices.
	o1 := n1.mustSetup(t)
	br1 := link(t, o1.h, "thk0")
	vx1 := link(t, o1.h, "thkvx0")
	again := n1.mustSetup(t)
	if !bytes.Equal(again.VTEPMAC(), o1.VTEPMAC()) {
		t.Errorf("second Setup: VTEP MAC %v, first %v", again.VTEPMAC(), o1.VTEPMAC())
	}
	if b, v := link(t, again.h, "thk0"), link(t, again.h, "thkvx0"); b.Attrs().Index != br1.Attrs().Index || v.Attrs().Index != vx1.Attrs().Index {
		t.Errorf("second Setup re-created devices: bridge %d→%d, vxlan %d→%d", br1.Attrs().Index, b.Attrs().Index, vx1.Attrs().Index, v.Attrs().Index)
	}
	again.Close()
	if got := addrs(t, o1.h, br1); len(got) != 1 || got[0] != "10.64.1.1/24" {
		t.Errorf("bridge addresses %v, want [10.64.1.1/24]", got)
	}
	if got := addrs(t, o1.h, vx1); len(got) != 1 || got[0] != "10.64.1.0/32" {
		t.Errorf("vxlan addresses %v, want [10.64.1.0/32]", got)
	}
	vx, ok := vx1.(*netlink.Vxlan)
	if !ok || vx.VxlanId != 4242 || vx.Port != 4789 || vx.Learning || !vx.SrcAddr.Equal(net.ParseIP("192.168.250.1")) || vx.MTU != 1450 {
		t.Errorf("vxlan device %+v", vx1)
	}
	if br1.Attrs().MTU != 1450 {
		t.Errorf("bridge MTU %d, want 1450", br1.Attrs().MTU)
	}
	var fwd []byte
	if err := inNetns(n1.handle, func() (err error) { fwd, err = os.ReadFile("/proc/sys/net/ipv4/ip_forward"); return }); err != nil || string(fwd) != "1\n" {
		t.Errorf("ip_forward in %s = %q, %v", n1.ns, fwd, err)
	}
	o2 := n2.mustSetup(t)

	// Peers: own subnet ignored, idempotent.
	for range 2 {
		if err := o1.setAll(o1.peer(), o2.peer()); err != nil {
			t.Fatal(err)
		}
		if err := o2.setAll(o1.peer()); err != nil {
			t.Fatal(err)
		}
	}
	e := o1.entries(t)
	wantRoute := "10.64.2.0/24 via 10.64.2.0 onlink=true"
	wantNeigh := fmt.Sprintf("10.64.2.0 %v permanent=true", o2.VTEPMAC())
	wantFDB := fmt.Sprintf("%v dst 192.168.250.2 permanent=true", o2.VTEPMAC())
	if fmt.Sprint(e.routes) != "["+wantRoute+"]" || fmt.Sprint(e.neighs) != "["+wantNeigh+"]" || fmt.Sprint(e.fdb) != "["+wantFDB+"]" {
		t.Errorf("n1 peer entries %+v, want route %q, neigh %q, fdb %q", e, wantRoute, wantNeigh, wantFDB)
	}

	// Instances.
	a, err := o1.Attach("web.0", netip.MustParseAddr("10.64.1.10"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := o2.Attach("db/1", netip.MustParseAddr("10.64.2.10"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(netnsDir, n2.cfg.NetnsPrefix+"db_2f1"); b.Netns != want {
		t.Errorf("netns %s, want %s", b.Netns, want)
	}
	checkInstance(t, o1, a)
	checkInstance(t, o2, b)
	hostA := link(t, o1.h, hostVethName("web.0"))
	if hostA.Attrs().MasterIndex != br1.Attrs().Index || hostA.Attrs().Alias != "web.0" || hostA.Attrs().MTU != 1450 {
		t.Errorf("host veth %+v", hostA.Attrs())
	}

	// Across the VXLAN, both ways; TCP too.
	txBefore := vxTx(t, o1)
	mustPing(t, a.Netns, b.IP)
	mustPing(t, b.Netns, a.IP)
	checkTCP(t, a, b)
	if tx := vxTx(t, o1); tx < txBefore+3 {
		t.Errorf("vxlan device sent %d packets, want the ping and TCP traffic", tx-txBefore)
	}

	// "Restart": a new Setup with the same config adopts everything.
	o1.Close()
	o1 = n1.mustSetup(t)
	atts, err := o1.Attachments()
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 1 || atts[0] != a {
		t.Fatalf("Attachments after restart = %+v, want [%+v]", atts, a)
	}
	ethA := link(t, nsHandle(t, a.Netns), "eth0")
	a2, err := o1.Attach(a.Key, a.IP)
	if err != nil || a2 != a {
		t.Fatalf("Attach again = %+v, %v; want %+v", a2, err, a)
	}
	if h, e := link(t, o1.h, hostA.Attrs().Name), link(t, nsHandle(t, a.Netns), "eth0"); h.Attrs().Index != hostA.Attrs().Index || e.Attrs().Index != ethA.Attrs().Index {
		t.Errorf("Attach again re-created the veth pair")
	}
	if _, err := o1.Attach(a.Key, netip.MustParseAddr("10.64.1.11")); err == nil {
		t.Error("Attach with the same key and another IP: no error")
	}
	if _, err := o1.Attach("other", netip.MustParseAddr("10.64.2.5")); err == nil {
		t.Error("Attach with an IP outside the subnet: no error")
	}
	mustPing(t, a.Netns, b.IP)

	// Another subnet on an existing node: a clear error, nothing changed.
	other := n1.cfg
	other.Subnet = netip.MustParsePrefix("10.64.9.0/24")
	if _, err := n1.setup(t, other); err == nil || !strings.Contains(err.Error(), "10.64.9.0/24") {
		t.Errorf("Setup with another subnet: %v", err)
	}
	if got := addrs(t, o1.h, link(t, o1.h, "thk0")); len(got) != 1 || got[0] != "10.64.1.1/24" {
		t.Errorf("bridge addresses after a rejected Setup: %v", got)
	}

	// No peers: routes, neighbours and FDB entries go, traffic stops;
	// and come back.
	if err := o1.setAll(); err != nil {
		t.Fatal(err)
	}
	if e := o1.entries(t); len(e.routes)+len(e.neighs)+len(e.fdb) != 0 {
		t.Errorf("entries left after SetPeers(nil): %+v", e)
	}
	if err := ping(a.Netns, b.IP); err == nil {
		t.Error("ping across the overlay works without peers")
	}
	if err := o1.setAll(o2.peer()); err != nil {
		t.Fatal(err)
	}
	mustPing(t, a.Netns, b.IP)

	// Detach: veth and namespace gone; again and unknown keys are fine.
	if err := o1.Detach(a.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := o1.h.LinkByName(hostA.Attrs().Name); !isNotFound(err) {
		t.Errorf("host veth after Detach: %v", err)
	}
	if _, err := os.Stat(a.Netns); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Detach: %v", a.Netns, err)
	}
	if err := o1.Detach(a.Key); err != nil {
		t.Errorf("second Detach: %v", err)
	}
	if err := o1.Detach("never-attached"); err != nil {
		t.Errorf("Detach unknown: %v", err)
	}
	if atts, err := o1.Attachments(); err != nil || len(atts) != 0 {
		t.Errorf("Attachments after Detach = %+v, %v", atts, err)
	}

	// Teardown removes devices and instance namespaces.
	if err := o2.Teardown(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"thk0", "thkvx0", hostVethName("db/1")} {
		if _, err := o2.h.LinkByName(name); !isNotFound(err) {
			t.Errorf("%s after Teardown: %v", name, err)
		}
	}
	if _, err := os.Stat(b.Netns); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Teardown: %v", b.Netns, err)
	}
}

func vxTx(t *testing.T, o *Overlay) uint64 {
	t.Helper()
	st := link(t, o.h, o.cfg.VXLAN).Attrs().Statistics
	if st == nil {
		t.Fatal("no statistics for the vxlan device")
	}
	return st.TxPackets
}

// checkTCP listens in b's namespace and dials from a's, through the overlay.
func checkTCP(t *testing.T, a, b Attachment) {
	t.Helper()
	nsA, err := netns.GetFromPath(a.Netns)
	if err != nil {
		t.Fatal(err)
	}
	defer nsA.Close()
	nsB, err := netns.GetFromPath(b.Netns)
	if err != nil {
		t.Fatal(err)
	}
	defer nsB.Close()

	var ln net.Listener
	if err := inNetns(nsB, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(b.IP, 0).String())
		return
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Fprintf(c, "echo %s", line)
	}()
	var c net.Conn
	if err := inNetns(nsA, func() (err error) {
		c, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		return
	}); err != nil {
		t.Fatalf("dial %s from %s: %v", ln.Addr(), a.Netns, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != a.IP.String() {
		t.Errorf("TCP source %s, want %v", got, a.IP)
	}
	fmt.Fprintf(c, "hello\n")
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || reply != "echo hello\n" {
		t.Fatalf("TCP reply %q, %v", reply, err)
	}
}

// TestAttachInterrupted: a namespace left without eth0 (a crash inside
// Attach) is listed with no IP and completed by the next Attach.
func TestAttachInterrupted(t *testing.T) {
	n1, _ := newTopology(t)
	o := n1.mustSetup(t)
	name, err := o.NetnsName("half")
	if err != nil {
		t.Fatal(err)
	}
	path, err := netnsfs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	atts, err := o.Attachments()
	if err != nil || len(atts) != 1 || atts[0].Key != "half" || atts[0].IP.IsValid() || atts[0].Netns != path {
		t.Fatalf("Attachments = %+v, %v; want half with no IP", atts, err)
	}
	a, err := o.Attach("half", netip.MustParseAddr("10.64.1.20"))
	if err != nil {
		t.Fatal(err)
	}
	checkInstance(t, o, a)
	mustPing(t, a.Netns, o.gw)
	if err := o.Teardown(); err != nil {
		t.Fatal(err)
	}
}

// TestSetPeersRefusesBadPeers: each bad peer is refused with its reason
// while the good peer beside it stays routed exactly as before; a routed
// peer keeps its place against a newcomer that overlaps it.
func TestSetPeersRefusesBadPeers(t *testing.T) {
	n1, _ := newTopology(t)
	cfg := n1.cfg
	cfg.Network = netip.MustParsePrefix("10.64.0.0/10")
	o, err := n1.setup(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	good := Peer{Subnet: netip.MustParsePrefix("10.64.2.0/24"), VTEPMAC: derivedMAC("x"), Underlay: netip.MustParseAddr("192.168.250.2")}
	if err := o.setAll(good); err != nil {
		t.Fatal(err)
	}
	before := o.entries(t)
	for _, c := range []struct {
		name, want string
		p          Peer
	}{
		{"half the internet", "outside the instance network", Peer{Subnet: netip.MustParsePrefix("0.0.0.0/1"), VTEPMAC: derivedMAC("y"), Underlay: good.Underlay}},
		{"around the underlay", "outside the instance network", Peer{Subnet: netip.MustParsePrefix("192.168.250.0/30"), VTEPMAC: derivedMAC("y"), Underlay: good.Underlay}},
		{"the whole network", "outside the instance network", Peer{Subnet: netip.MustParsePrefix("10.0.0.0/8"), VTEPMAC: derivedMAC("y"), Underlay: good.Underlay}},
		{"own subnet, other MAC", "overlaps this node's subnet", Peer{Subnet: n1.cfg.Subnet, VTEPMAC: derivedMAC("y"), Underlay: good.Underlay}},
		{"overlaps own", "overlaps this node's subnet", Peer{Subnet: netip.MustParsePrefix("10.64.0.0/16"), VTEPMAC: derivedMAC("y"), Underlay: good.Underlay}},
		{"not masked", "not a network address", Peer{Subnet: netip.MustParsePrefix("10.64.3.1/24"), VTEPMAC: derivedMAC("y"), Underlay: good.Underlay}},
		{"multicast MAC", "not a unicast MAC", Peer{Subnet: netip.MustParsePrefix("10.64.3.0/24"), VTEPMAC: net.HardwareAddr{1, 0, 0x5e, 0, 0, 1}, Underlay: good.Underlay}},
		{"this node's MAC", "is this node's", Peer{Subnet: netip.MustParsePrefix("10.64.3.0/24"), VTEPMAC: o.VTEPMAC(), Underlay: good.Underlay}},
		{"no underlay", "not an IPv4 address", Peer{Subnet: netip.MustParsePrefix("10.64.3.0/24"), VTEPMAC: derivedMAC("y")}},
		{"underlay in the instance network", "inside the instance network", Peer{Subnet: netip.MustParsePrefix("10.64.3.0/24"), VTEPMAC: derivedMAC("y"), Underlay: netip.MustParseAddr("10.64.2.7")}},
		{"duplicate MAC", "also the MAC of peer 10.64.2.0/24", Peer{Subnet: netip.MustParsePrefix("10.64.3.0/24"), VTEPMAC: good.VTEPMAC, Underlay: good.Underlay}},
		{"inside a routed peer", "overlaps the subnet 10.64.2.0/24", Peer{Subnet: netip.MustParsePrefix("10.64.2.128/25"), VTEPMAC: derivedMAC("y"), Underlay: good.Underlay}},
		{"around a routed peer", "overlaps the subnet 10.64.2.0/24", Peer{Subnet: netip.MustParsePrefix("10.64.2.0/23"), VTEPMAC: derivedMAC("y"), Underlay: good.Underlay}},
		{"the same subnet", "overlaps the subnet 10.64.2.0/24", Peer{Subnet: good.Subnet, VTEPMAC: derivedMAC("y"), Underlay: good.Underlay}},
	} {
		// The bad peer comes first: order gives it no advantage.
		refused, err := o.SetPeers([]Peer{c.p, good})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if len(refused) != 1 || refused[0].Index != 0 || !strings.Contains(refused[0].Reason, c.want) {
			t.Errorf("%s: refused %v; want peer 0 refused: %q", c.name, refused, c.want)
		}
		if after := o.entries(t); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("%s: the good peer's entries changed: %+v → %+v", c.name, before, after)
		}
	}
	// A restarted daemon's Overlay knows the routed peers from the kernel:
	// a narrower newcomer listed first does not take the good peer's place.
	again, err := n1.setup(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	inside := Peer{Subnet: netip.MustParsePrefix("10.64.2.0/25"), VTEPMAC: derivedMAC("i"), Underlay: good.Underlay}
	if refused, err := again.SetPeers([]Peer{inside, good}); err != nil || len(refused) != 1 || refused[0].Peer.Subnet != inside.Subnet {
		t.Errorf("after a restart: refused %v, %v; want the newcomer inside the routed peer", refused, err)
	}
	if after := again.entries(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("after a restart: the good peer's entries changed: %+v → %+v", before, after)
	}
	again.Close()
	// Two newcomers overlapping each other: the narrower one is routed.
	wide := Peer{Subnet: netip.MustParsePrefix("10.64.4.0/23"), VTEPMAC: derivedMAC("w"), Underlay: good.Underlay}
	narrow := Peer{Subnet: netip.MustParsePrefix("10.64.5.0/24"), VTEPMAC: derivedMAC("n"), Underlay: good.Underlay}
	if refused, err := o.SetPeers([]Peer{wide, good, narrow}); err != nil || len(refused) != 1 || refused[0].Peer.Subnet != wide.Subnet {
		t.Errorf("wide and narrow newcomers: refused %v, %v; want the wide one", refused, err)
	}
	// A peer listening on another port gets it in its FDB entry.
	good.Port = 8472
	if err := o.setAll(good); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "exec", n1.ns, "bridge", "fdb", "show", "dev", "thkvx0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "dst 192.168.250.2 port 8472") {
		t.Errorf("bridge fdb: %v\n%s", err, out)
	}
	if err := o.Teardown(); err != nil {
		t.Fatal(err)
	}
}

// TestSetupReconfigure: a changed port re-creates the VXLAN device with the
// same MAC; a changed subnet is refused before anything changes.
func TestSetupReconfigure(t *testing.T) {
	n1, n2 := newTopology(t)
	o1, o2 := n1.mustSetup(t), n2.mustSetup(t)
	if err := o1.setAll(o2.peer()); err != nil {
		t.Fatal(err)
	}
	if err := o2.setAll(o1.peer()); err != nil {
		t.Fatal(err)
	}
	a, err := o1.Attach("a", netip.MustParseAddr("10.64.1.2"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := o2.Attach("b", netip.MustParseAddr("10.64.2.2"))
	if err != nil {
		t.Fatal(err)
	}
	mustPing(t, a.Netns, b.IP)
	vx := link(t, o1.h, "thkvx0")

	// Both nodes move to port 8472 (the daemons would re-advertise).
	for _, n := range []*testNode{n1, n2} {
		n.cfg.Port = 8472
	}
	r1, r2 := n1.mustSetup(t), n2.mustSetup(t)
	nvx := link(t, r1.h, "thkvx0").(*netlink.Vxlan)
	if nvx.Index == vx.Attrs().Index || nvx.Port != 8472 {
		t.Errorf("vxlan after port change: index %d (was %d), port %d", nvx.Index, vx.Attrs().Index, nvx.Port)
	}
	if !bytes.Equal(r1.VTEPMAC(), o1.VTEPMAC()) {
		t.Errorf("VTEP MAC changed with the port: %v → %v", o1.VTEPMAC(), r1.VTEPMAC())
	}
	if err := r1.setAll(r2.peer()); err != nil {
		t.Fatal(err)
	}
	if err := r2.setAll(r1.peer()); err != nil {
		t.Fatal(err)
	}
	mustPing(t, a.Netns, b.IP)

	// The bridge is missing but the vxlan device has the old subnet: refused
	// before the bridge is re-created.
	if err := r1.h.LinkDel(link(t, r1.h, "thk0")); err != nil {
		t.Fatal(err)
	}
	other := n1.cfg
	other.Subnet = netip.MustParsePrefix("10.64.9.0/24")
	if _, err := n1.setup(t, other); err == nil || !strings.Contains(err.Error(), "purge") {
		t.Errorf("Setup with another subnet: %v", err)
	}
	if _, err := r1.h.LinkByName("thk0"); !isNotFound(err) {
		t.Errorf("rejected Setup created the bridge: %v", err)
	}
	// The same subnet re-creates the bridge; Attach puts the instance back.
	r1 = n1.mustSetup(t)
	if atts, err := r1.Attachments(); err != nil || len(atts) != 1 || atts[0] != a {
		t.Fatalf("Attachments = %+v, %v; want [%+v]", atts, err, a)
	}
	if _, err := r1.Attach(a.Key, a.IP); err != nil {
		t.Fatal(err)
	}
	mustPing(t, a.Netns, b.IP)
}

// TestBridgePassesNetfilter: the bridge passes bridged IPv4 through the ip
// hooks (nf_call_iptables), on a new bridge and on one adopted without it.
func TestBridgePassesNetfilter(t *testing.T) {
	n1, _ := newTopology(t)
	nfCall := func() string {
		out, err := exec.Command("ip", "-d", "-n", n1.ns, "link", "show", "thk0").CombinedOutput()
		if err != nil {
			t.Fatalf("ip link show: %v %s", err, out)
		}
		if m := regexp.MustCompile(`nf_call_iptables (\d)`).FindStringSubmatch(string(out)); m != nil {
			return m[1]
		}
		t.Fatalf("no nf_call_iptables in %s", out)
		return ""
	}
	n1.mustSetup(t)
	if v := nfCall(); v != "1" {
		t.Fatalf("new bridge: nf_call_iptables %s, want 1", v)
	}
	run(t, "ip", "-n", n1.ns, "link", "set", "thk0", "type", "bridge", "nf_call_iptables", "0")
	n1.mustSetup(t)
	if v := nfCall(); v != "1" {
		t.Fatalf("adopted bridge: nf_call_iptables %s, want 1", v)
	}
}
