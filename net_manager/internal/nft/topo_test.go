package nft

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/net_manager/internal/netnsfs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The kernel tests build this topology in throwaway named network namespaces:
//
//	node:  br0 10.64.0.1/24 (instances), pub0 192.168.251.1/24 (to peer),
//	       svc0 (empty bridge as a sink), route 10.30.0.0/16 dev svc0, ip_forward=1,
//	       hairpin on the bridge ports, bridge-nf-call-iptables=0 (no
//	       br_netfilter); holds the nft table.
//	i0..i3: eth0 10.64.0.2 .. 10.64.0.5/24 on br0, default via 10.64.0.1;
//	       i0..i2 run TCP :8080 and UDP :8081 servers answering
//	       "<own ip> <peer ip>"; i3 is a client only.
//	peer:  peer0 192.168.251.2/24, default via 192.168.251.1 (another node);
//	       runs a TCP server on :9000 answering the same way.

const (
	svcIP    = "10.30.0.10"
	nodeAddr = "192.168.251.1"
	peerAddr = "192.168.251.2"
)

var nsSeq atomic.Int32

type nsNode struct {
	name string
	h    netns.NsHandle
	hits atomic.Int64 // connections / datagrams served
}

type topo struct {
	t     *testing.T
	node  *nsNode
	inst  []*nsNode // i0..i3
	peer  *nsNode
	insIP []string
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test programs nftables in network namespaces and must run as root")
	}
}

// onThread runs fn on a locked OS thread and restores the thread's network
// namespace afterwards, so that the namespace switches inside fn never leak
// into other goroutines.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return // thread stays locked and dies with the goroutine
		}
		defer orig.Close()
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return // do not unlock: the thread is in the wrong namespace
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// inNS runs fn inside namespace n.
func inNS(n *nsNode, fn func() error) error {
	return onThread(func() error {
		if err := netns.Set(n.h); err != nil {
			return err
		}
		return fn()
	})
}

func newNS(t *testing.T, role string) *nsNode {
	t.Helper()
	n := &nsNode{name: fmt.Sprintf("thknft%d-%d-%s", os.Getpid(), nsSeq.Add(1), role)}
	path, err := netnsfs.Create(n.name)
	if err == nil {
		n.h, err = netns.GetFromPath(path)
		if err != nil {
			netnsfs.Delete(n.name)
		}
	}
	if err != nil {
		t.Fatalf("create netns %s: %v", n.name, err)
	}
	t.Cleanup(func() {
		n.h.Close()
		if err := netnsfs.Delete(n.name); err != nil {
			t.Errorf("delete netns %s: %v", n.name, err)
		}
	})
	h := handle(t, n)
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo up in %s: %v", n.name, err)
	}
	return n
}

func handle(t *testing.T, n *nsNode) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(n.h)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", n.name, err)
	}
	t.Cleanup(h.Close)
	return h
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// veth creates a veth pair in the node namespace, moves the peer end into
// other, and configures both ends.
func veth(t *testing.T, node, other *nsNode, hostName string, master *netlink.Bridge, hostAddr, addr, gw string) {
	t.Helper()
	hn, ho := handle(t, node), handle(t, other)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = hostName
	if master != nil {
		attrs.MasterIndex = master.Index
	}
	peerName := "p" + hostName
	must(t, "add veth "+hostName, hn.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: peerName}))
	pl, err := hn.LinkByName(peerName)
	must(t, "find veth peer", err)
	must(t, "move veth peer", hn.LinkSetNsFd(pl, int(other.h)))
	hl, err := hn.LinkByName(hostName)
	must(t, "find veth", err)
	if hostAddr != "" {
		a, _ := netlink.ParseAddr(hostAddr)
		must(t, "addr "+hostAddr, hn.AddrAdd(hl, a))
	}
	if master != nil {
		// hairpin: an instance reaching itself through a published port or
		// service IP gets its packet back through its own bridge port.
		must(t, "hairpin", hn.LinkSetHairpin(hl, true))
	}
	must(t, "veth up", hn.LinkSetUp(hl))
	pl, err = ho.LinkByName(peerName)
	must(t, "find moved veth peer", err)
	must(t, "rename veth peer", ho.LinkSetName(pl, "eth0"))
	a, _ := netlink.ParseAddr(addr)
	must(t, "addr "+addr, ho.AddrAdd(pl, a))
	must(t, "veth peer up", ho.LinkSetUp(pl))
	must(t, "default route", ho.RouteAdd(&netlink.Route{LinkIndex: pl.Attrs().Index, Gw: net.ParseIP(gw)}))
	// Until the kernel's link watcher has seen the carrier, the device
	// keeps its no-op qdisc and drops what is sent: wait for both ends.
	waitUp(t, hn, hostName)
	waitUp(t, ho, "eth0")
}

func waitUp(t *testing.T, h *netlink.Handle, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := h.LinkByName(name)
		must(t, "link "+name, err)
		if l.Attrs().OperState == netlink.OperUp {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("link %s not up: %v", name, l.Attrs().OperState)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTopo(t *testing.T) *topo {
	t.Helper()
	requireRoot(t)
	tp := &topo{t: t, node: newNS(t, "node"), peer: newNS(t, "peer")}
	hn := handle(t, tp.node)

	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	must(t, "add bridge", hn.LinkAdd(br))
	brl, err := hn.LinkByName("br0")
	must(t, "find bridge", err)
	br = brl.(*netlink.Bridge)
	a, _ := netlink.ParseAddr("10.64.0.1/24")
	must(t, "bridge addr", hn.AddrAdd(br, a))
	must(t, "bridge up", hn.LinkSetUp(br))

	for i := 0; i < 4; i++ {
		n := newNS(t, fmt.Sprintf("i%d", i))
		ip := fmt.Sprintf("10.64.0.%d", i+2)
		veth(t, tp.node, n, fmt.Sprintf("vi%d", i), br, "", ip+"/24", "10.64.0.1")
		tp.inst = append(tp.inst, n)
		tp.insIP = append(tp.insIP, ip)
	}
	veth(t, tp.node, tp.peer, "pub0", nil, nodeAddr+"/24", peerAddr+"/24", nodeAddr)

	// The node needs a route for the service range, or its own connect()s
	// fail before the nat output hook runs. A sink device (a dummy would do;
	// this kernel has no dummy driver, so an empty bridge) keeps the packets
	// that no rule translated off the instance bridge.
	svc0 := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "svc0"}}
	must(t, "add dummy", hn.LinkAdd(svc0))
	must(t, "dummy up", hn.LinkSetUp(svc0))
	_, svcNet, _ := net.ParseCIDR("10.30.0.0/16")
	must(t, "service route", hn.RouteAdd(&netlink.Route{LinkIndex: svc0.Index, Dst: svcNet}))
	must(t, "sysctls", inNS(tp.node, func() error {
		// Bridged traffic must not go through the ip hooks (as on a host
		// without br_netfilter): the rules must work without it.
		const brnf = "/proc/sys/net/bridge/bridge-nf-call-iptables"
		if _, err := os.Stat(brnf); err == nil {
			if err := os.WriteFile(brnf, []byte("0"), 0o644); err != nil {
				return err
			}
		}
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	}))

	for i := 0; i < 3; i++ {
		tp.serveTCP(tp.inst[i], ":8080")
		tp.serveUDP(tp.inst[i], ":8081")
	}
	tp.serveTCP(tp.peer, ":9000")
	return tp
}

// serveTCP answers every connection with "<local ip> <remote ip>\n".
func (tp *topo) serveTCP(n *nsNode, addr string) {
	var ln net.Listener
	must(tp.t, "listen", inNS(n, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	}))
	var wg sync.WaitGroup
	tp.t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.hits.Add(1)
			l := c.LocalAddr().(*net.TCPAddr).IP
			r := c.RemoteAddr().(*net.TCPAddr).IP
			fmt.Fprintf(c, "%s %s\n", l, r)
			c.Close()
		}
	}()
}

// serveUDP answers every datagram with "<local ip> <remote ip>\n".
func (tp *topo) serveUDP(n *nsNode, addr string) {
	var pc *net.UDPConn
	must(tp.t, "listen udp", inNS(n, func() error {
		c, err := net.ListenPacket("udp4", addr)
		if err == nil {
			pc = c.(*net.UDPConn)
		}
		return err
	}))
	own := n.ownIP() // the socket is bound to the wildcard address
	var wg sync.WaitGroup
	tp.t.Cleanup(func() { pc.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			_, ra, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			n.hits.Add(1)
			_, _ = pc.WriteToUDP([]byte(fmt.Sprintf("%s %s\n", own, ra.IP)), ra)
		}
	}()
}

// ownIP is the eth0 address of an instance namespace.
func (n *nsNode) ownIP() string {
	var ip string
	_ = inNS(n, func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		as, err := ifc.Addrs()
		if err != nil || len(as) == 0 {
			return err
		}
		ip = as[0].(*net.IPNet).IP.String()
		return nil
	})
	return ip
}

// get opens a TCP connection from namespace n to addr and returns the server's
// answer: its own address and the client address it saw.
func get(n *nsNode, addr string) (server, client string, err error) {
	return getWithin(n, addr, 2*time.Second)
}

func getWithin(n *nsNode, addr string, timeout time.Duration) (server, client string, err error) {
	err = inNS(n, func() error {
		d := net.Dialer{Timeout: timeout}
		c, err := d.Dial("tcp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return fmt.Errorf("bad answer %q", line)
		}
		server, client = f[0], f[1]
		return nil
	})
	return
}

// dialUDP returns a connected UDP socket made in namespace n.
func dialUDP(n *nsNode, addr string) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := inNS(n, func() error {
		cc, err := net.Dial("udp4", addr)
		if err == nil {
			c = cc.(*net.UDPConn)
		}
		return err
	})
	return c, err
}

// askUDP sends one datagram on c and returns the answering server's address.
func askUDP(c *net.UDPConn) (string, error) {
	if _, err := c.Write([]byte("?")); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(buf[:n]))
	if len(f) != 2 {
		return "", fmt.Errorf("bad answer %q", buf[:n])
	}
	return f[0], nil
}

// newTables creates Tables bound to the node namespace.
func (tp *topo) newTables(cfg Config) *Tables {
	tp.t.Helper()
	var tb *Tables
	must(tp.t, "New", inNS(tp.node, func() (err error) {
		tb, err = New(cfg)
		return err
	}))
	tp.t.Cleanup(func() {
		if err := tb.Delete(); err != nil {
			tp.t.Errorf("cleanup Delete: %v", err)
		}
		tb.Close()
	})
	return tb
}

// nft runs the nft CLI in the node namespace (inspection only).
func (tp *topo) nft(args ...string) string {
	tp.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", tp.node.name, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		tp.t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (tp *topo) resetHits() {
	for _, n := range tp.inst {
		n.hits.Store(0)
	}
}

func (tp *topo) hits() []int64 {
	h := make([]int64, 3)
	for i := range h {
		h[i] = tp.inst[i].hits.Load()
	}
	return h
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}
