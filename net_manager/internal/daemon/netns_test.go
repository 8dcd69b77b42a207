package daemon

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/net_manager/internal/netnsfs"
)

// The daemon over a real datapath, in a network namespace of its own (run
// as root, under the host lock: flock /tmp/thicket-host.lock go test ...).

// nodeNetns makes a namespace named id with an underlay address
// 192.168.251.1/24 on a veth, as a node's; it and the instance
// namespaces named id-* go at cleanup.
func nodeNetns(t *testing.T, id string) netns.NsHandle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces, bridge, vxlan, nftables): run go test as root")
	}
	cleanup := func() {
		names, _ := filepath.Glob(filepath.Join("/run/netns", id+"-*"))
		for _, p := range names {
			if err := netnsfs.Delete(filepath.Base(p)); err != nil {
				t.Errorf("cleanup %s: %v", p, err)
			}
		}
		if _, err := os.Stat(filepath.Join("/run/netns", id)); err == nil {
			if out, err := exec.Command("ip", "netns", "del", id).CombinedOutput(); err != nil {
				t.Errorf("cleanup %s: %v %s", id, err, out)
			}
		}
	}
	cleanup() // a killed run's leftovers
	t.Cleanup(cleanup)
	for _, args := range [][]string{
		{"netns", "add", id},
		{"-n", id, "link", "add", "u0", "type", "veth", "peer", "name", "u1"},
		{"-n", id, "link", "set", "u1", "up"},
		{"-n", id, "addr", "add", "192.168.251.1/24", "dev", "u0"},
		{"-n", id, "link", "set", "u0", "up"},
		{"-n", id, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	h, err := netns.GetFromName(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// nodeHost makes a node's namespace (nodeNetns) named prefix<pid> and
// the config of a daemon there: underlay 192.168.251.1, public address
// 192.0.2.1, the default instance network, its files in a temporary dir.
func nodeHost(t *testing.T, prefix string) (id string, ns netns.NsHandle, dir string, cfg Config) {
	t.Helper()
	id = fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
	ns = nodeNetns(t, id)
	dir = t.TempDir()
	return id, ns, dir, Config{
		Socket: filepath.Join(dir, "net.sock"), DataDir: filepath.Join(dir, "data"),
		Underlay: netip.MustParseAddr("192.168.251.1"), PublicIP: netip.MustParseAddr("192.0.2.1"), PublicPort: 4789, Port: 4789,
		InstanceNetwork: netip.MustParsePrefix("10.64.0.0/10"), NetnsPrefix: id + "-",
	}
}

// within runs fn on a thread in ns. A thread that cannot be brought back
// to its namespace is left locked, so that Go retires it.
func within(t *testing.T, ns netns.NsHandle, fn func() error) error {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
	}()
	return fn()
}

// TestDatapathAdoptedAfterRestart: instances get the lowest free address
// of the node's subnet and keep it; a restarted daemon adopts the overlay
// and its instances and re-addresses nothing; a freed address is given
// again; a second daemon in the namespace, or one with another data dir
// after the first stopped, is refused.
func TestDatapathAdoptedAfterRestart(t *testing.T) {
	id, ns, dir, cfg := nodeHost(t, "thkd")
	log := slog.New(slog.DiscardHandler)
	start := func(cfg Config) (*Daemon, error) { return New(cfg, log) }
	attach := func(d *Daemon, key, wantIP string) {
		t.Helper()
		a, err := d.Attach(key, netapi.AttachRequest{})
		if err != nil {
			t.Fatalf("attach %s: %v", key, err)
		}
		if a.IP != wantIP || a.Netns != filepath.Join("/run/netns", id+"-"+key) {
			t.Fatalf("attach %s = %+v; want %s in %s", key, a, wantIP, filepath.Join("/run/netns", id+"-"+key))
		}
		if _, err := os.Stat(a.Netns); err != nil {
			t.Fatalf("attach %s: its namespace: %v", key, err)
		}
	}

	// Everything runs in the node's namespace: the daemon makes its devices
	// and rules where it is.
	within(t, ns, func() error {
		d, err := start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if st := d.Status(); st.Ready {
			t.Errorf("ready before a subnet: %+v", st)
		}
		if _, err := d.Attach("s0", netapi.AttachRequest{}); err != errNotReady {
			t.Errorf("attach before a subnet = %v; want errNotReady", err)
		}
		if err := d.Configure(netapi.Config{NodeID: "n1", ClusterID: "c1", Subnet: "10.64.9.0/24"}); err != nil {
			t.Fatal(err)
		}
		st := d.Status()
		if !st.Ready || st.Node.Subnet != "10.64.9.0/24" || st.Node.NodeID != "n1" || st.Node.VTEPMAC == "" || st.Node.PublicIP != "192.0.2.1" || st.Node.PublicPort != 4789 {
			t.Errorf("status after configure: %+v", st)
		}
		attach(d, "s0", "10.64.9.2")
		attach(d, "s1", "10.64.9.3")
		attach(d, "s0", "10.64.9.2") // again: the same address

		// Another daemon in the same namespace is refused while this one runs.
		other := cfg
		other.DataDir = filepath.Join(dir, "other")
		if d2, err := start(other); err == nil {
			d2.Close()
			t.Fatal("a second daemon started in the namespace")
		}

		vtep := st.Node.VTEPMAC
		d.Close()
		d, err = start(cfg)
		if err != nil {
			t.Fatalf("restart: %v", err)
		}
		defer d.Close()
		if st := d.Status(); !st.Ready || st.Node.VTEPMAC != vtep || st.Node.Subnet != "10.64.9.0/24" {
			t.Errorf("status after a restart: %+v; want ready, VTEP %s", st, vtep)
		}
		as := d.Attachments()
		if len(as) != 2 || as[0].Key != "s0" || as[0].IP != "10.64.9.2" || as[1].Key != "s1" || as[1].IP != "10.64.9.3" {
			t.Errorf("attachments after a restart: %+v", as)
		}
		attach(d, "s2", "10.64.9.4")
		if err := d.Detach("s0"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join("/run/netns", id+"-s0")); !os.IsNotExist(err) {
			t.Errorf("a detached instance's namespace is still there: %v", err)
		}
		attach(d, "s3", "10.64.9.2") // the freed address

		// The subnet does not change under instances.
		if err := d.Configure(netapi.Config{NodeID: "n1", ClusterID: "c1", Subnet: "10.64.10.0/24"}); err == nil || !strings.Contains(err.Error(), "while 3 instances use it") {
			t.Errorf("subnet change under instances = %v", err)
		}
		d.Close()

		// Another data dir finds this one's devices and refuses them.
		if d2, err := start(other); err == nil {
			d2.Close()
			t.Error("a daemon with another data dir took over the devices")
		}
		return nil
	})
	// Nothing of it leaked into the test's own namespace.
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if strings.Contains(l.Attrs().Alias, dir) {
			t.Errorf("device %s of the test's daemon outside its namespace", l.Attrs().Name)
		}
	}
}

// TestBadPeersLeaveGoodOnesAlone: a peer set with rogue entries (half the
// internet, a subnet overlapping a good peer's, a /30 around the underlay,
// this node's own subnet, a service backend outside the instance network)
// is applied without them: the good peers' routes and the nftables rules
// are exactly those of the good set, the refusals are in Status, and
// Configure does not fail.
func TestBadPeersLeaveGoodOnesAlone(t *testing.T) {
	id, ns, _, cfg := nodeHost(t, "thkb")
	good := wire.Network{
		Peers: []wire.NodeNetwork{
			{NodeID: "n2", ClusterID: "c1", Subnet: "10.64.2.0/24", VTEPMAC: "02:00:00:00:00:02", PublicIP: "192.168.251.2", PublicPort: 4789},
			{NodeID: "n3", ClusterID: "c2", Subnet: "10.65.3.0/24", VTEPMAC: "02:00:00:00:00:03", PublicIP: "192.168.251.3", PublicPort: 4789},
		},
		Services: []wire.ServiceRoute{{IP: "10.30.0.5", Mode: wire.RouteRoundRobin, ServiceID: "s1", Backends: []wire.Backend{
			{IP: "10.64.2.7", NodeID: "n2", ClusterID: "c1"},
		}}},
	}
	bad := wire.Network{
		Peers: append([]wire.NodeNetwork{
			{NodeID: "rogue1", ClusterID: "c1", Subnet: "0.0.0.0/1", VTEPMAC: "02:00:00:00:00:a1", PublicIP: "192.168.251.9", PublicPort: 4789},
			{NodeID: "rogue2", ClusterID: "c1", Subnet: "10.64.2.0/23", VTEPMAC: "02:00:00:00:00:a2", PublicIP: "192.168.251.9", PublicPort: 4789},
			{NodeID: "rogue3", ClusterID: "c1", Subnet: "192.168.251.0/30", VTEPMAC: "02:00:00:00:00:a3", PublicIP: "192.168.251.9", PublicPort: 4789},
			{NodeID: "rogue4", ClusterID: "c1", Subnet: "10.64.9.0/24", VTEPMAC: "02:00:00:00:00:a4", PublicIP: "192.168.251.9", PublicPort: 4789},
			{NodeID: "rogue5", ClusterID: "c1", Subnet: "10.64.2.0/24", VTEPMAC: "02:00:00:00:00:a5", PublicIP: "192.168.251.9", PublicPort: 4789},
		}, good.Peers...),
		Services: []wire.ServiceRoute{{IP: "10.30.0.5", Mode: wire.RouteRoundRobin, ServiceID: "s1", Backends: []wire.Backend{
			{IP: "10.64.2.7", NodeID: "n2", ClusterID: "c1"},
			{IP: "192.168.251.1", NodeID: "rogue1", ClusterID: "c1"},
		}}},
	}
	datapath := func() string {
		t.Helper()
		var b strings.Builder
		for _, args := range [][]string{
			{"-n", id, "route", "show", "dev", "thkvx0"},
			{"-n", id, "neigh", "show", "dev", "thkvx0"},
		} {
			out, err := exec.Command("ip", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("ip %v: %v\n%s", args, err, out)
			}
			b.Write(out)
		}
		for _, args := range [][]string{
			{"netns", "exec", id, "bridge", "fdb", "show", "dev", "thkvx0"},
			{"netns", "exec", id, "nft", "list", "table", "ip", "thicket"},
		} {
			out, err := exec.Command("ip", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("ip %v: %v\n%s", args, err, out)
			}
			b.Write(out)
		}
		return b.String()
	}
	within(t, ns, func() error {
		d, err := New(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Configure(netapi.Config{NodeID: "n1", ClusterID: "c1", Subnet: "10.64.9.0/24", Network: good}); err != nil {
			t.Fatal(err)
		}
		if st := d.Status(); len(st.Refused) > 0 {
			t.Errorf("good set: refused %v", st.Refused)
		}
		before := datapath()
		for _, want := range []string{"10.64.2.0/24 via 10.64.2.0", "10.65.3.0/24 via 10.65.3.0", "10.64.2.7"} {
			if !strings.Contains(before, want) {
				t.Fatalf("good set: no %q in the datapath:\n%s", want, before)
			}
		}
		if err := d.Configure(netapi.Config{NodeID: "n1", ClusterID: "c1", Subnet: "10.64.9.0/24", Network: bad}); err != nil {
			t.Errorf("a set with bad peers failed: %v", err)
		}
		if after := datapath(); after != before {
			t.Errorf("bad peers changed the datapath:\n%s\n→\n%s", before, after)
		}
		refused := d.Status().Refused
		for _, who := range []string{"rogue1", "rogue2", "rogue3", "rogue4", "rogue5", "backend 192.168.251.1"} {
			if !slices.ContainsFunc(refused, func(r string) bool { return strings.Contains(r, who) }) {
				t.Errorf("%s not among the refused: %q", who, refused)
			}
		}
		if len(refused) != 6 {
			t.Errorf("refused %d entries; want 6: %q", len(refused), refused)
		}
		// The good set again: nothing refused, the same datapath.
		if err := d.Configure(netapi.Config{NodeID: "n1", ClusterID: "c1", Subnet: "10.64.9.0/24", Network: good}); err != nil {
			t.Fatal(err)
		}
		if st := d.Status(); len(st.Refused) > 0 || datapath() != before {
			t.Errorf("good set again: refused %v, datapath changed: %v", st.Refused, datapath() != before)
		}
		return nil
	})
}
