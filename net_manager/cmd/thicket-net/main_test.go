package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/net_manager/internal/netnsfs"
)

// These tests run thicket-net as a process (this test binary, re-executed
// with runMain set, under nsenter) in a throwaway network namespace with an
// underlay interface (192.168.251.1/24 on a veth pair); the host's own namespace is
// never touched. Instance namespaces are removed at cleanup.

const runMain = "THICKET_NET_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const underlay = "192.168.251.1"

// testNetns creates a network namespace with lo and the underlay u0 (a veth
// to u1) up
// and returns its path. Everything in it dies with it at cleanup.
func testNetns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces, bridge, vxlan, nftables): run go test as root")
	}
	for _, tool := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s (iproute2, util-linux): %v", tool, err)
		}
	}
	name := fmt.Sprintf("thktnet%d", os.Getpid())
	_ = netnsfs.Delete(name) // a leftover of a killed run with the same pid
	path, err := netnsfs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := netnsfs.Delete(name); err != nil {
			t.Error(err)
		}
	})
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "u0", "type", "veth", "peer", "name", "u1"},
		{"addr", "add", underlay + "/24", "dev", "u0"},
		{"link", "set", "u0", "up"},
		{"link", "set", "u1", "up"},
	} {
		ip(t, path, args...)
	}
	return path
}

func ip(t *testing.T, ns string, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", filepath.Base(ns)}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// netManager is a thicket-net process.
type netManager struct {
	cmd    *exec.Cmd
	socket string
	log    string // its stdout and stderr
	done   chan struct{}
	err    error // of Wait, once done is closed
}

// output is what m wrote so far.
func (m *netManager) output() string {
	b, _ := os.ReadFile(m.log)
	return string(b)
}

// start runs thicket-net in ns with dataDir and its socket there, and the
// extra flags; at cleanup it is killed if still running, and its instance
// namespaces are removed.
func start(t *testing.T, ns, dataDir string, extra ...string) *netManager {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	m := &netManager{socket: filepath.Join(dataDir, "net.sock"), log: filepath.Join(t.TempDir(), "log"), done: make(chan struct{})}
	out, err := os.Create(m.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	m.cmd = exec.Command("nsenter", append([]string{"--net=" + ns, exe,
		"--data-dir", dataDir, "--socket", m.socket, "--underlay", underlay, "--log-level", "debug"}, extra...)...)
	m.cmd.Env = append(os.Environ(), runMain+"=1")
	m.cmd.Stdout, m.cmd.Stderr = out, out
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.err = m.cmd.Wait(); close(m.done) }()
	t.Cleanup(func() {
		_ = m.cmd.Process.Kill()
		<-m.done
		names, _ := filepath.Glob(filepath.Join(netnsfs.Dir, netnsPrefix(dataDir)+"*"))
		for _, p := range names {
			if err := netnsfs.Delete(filepath.Base(p)); err != nil {
				t.Error(err)
			}
		}
	})
	return m
}

// ready waits until m answers on its socket.
func (m *netManager) ready(t *testing.T) *netapi.Client {
	t.Helper()
	c := netapi.NewClient(m.socket)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := c.Status(context.Background())
		if err == nil {
			return c
		}
		select {
		case <-m.done:
			t.Fatalf("thicket-net exited (%v):\n%s", m.err, m.output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("thicket-net not answering on %s: %v\n%s", m.socket, err, m.output())
		}
	}
}

// exit waits for m to end by itself and returns its output.
func (m *netManager) exit(t *testing.T) (int, string) {
	t.Helper()
	select {
	case <-m.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("thicket-net still running:\n%s", m.output())
	}
	var ee *exec.ExitError
	if m.err != nil && !errors.As(m.err, &ee) {
		t.Fatal(m.err)
	}
	return m.cmd.ProcessState.ExitCode(), m.output()
}

// stop ends m with SIGTERM, as systemd does, and expects exit status 0.
func (m *netManager) stop(t *testing.T) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := m.exit(t); code != 0 {
		t.Fatalf("thicket-net exited with %d on SIGTERM:\n%s", code, out)
	}
}

// device is what the tests compare of thk0 and thkvx0.
type device struct {
	Index int
	Alias string
	Addrs []string
}

func devices(t *testing.T, ns string) map[string]*device {
	t.Helper()
	nh, err := netns.GetFromPath(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	h, err := netlink.NewHandleAt(nh, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	out := map[string]*device{}
	for _, name := range []string{"thk0", "thkvx0"} {
		l, err := h.LinkByName(name)
		if err != nil {
			out[name] = nil
			continue
		}
		as, err := h.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		d := &device{Index: l.Attrs().Index, Alias: l.Attrs().Alias}
		for _, a := range as {
			d.Addrs = append(d.Addrs, a.IPNet.String())
		}
		out[name] = d
	}
	return out
}

func sameDevices(t *testing.T, what string, got, want map[string]*device) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("%s: devices %s, want %s", what, g, w)
	}
}

// dataDirs are two data dirs as thicket-net names them (absolute, symlinks
// resolved: t.TempDir may be under a symlink).
func dataDirs(t *testing.T) (string, string) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "a"), filepath.Join(dir, "b")
}

// TestOneNetManagerPerNamespace: a second thicket-net in the same network
// namespace exits at once with a message naming the first, which goes on
// serving; after the first stopped, its devices are refused to another data
// dir and adopted, with the instances, by a thicket-net with its data dir.
func TestOneNetManagerPerNamespace(t *testing.T) {
	ns := testNetns(t)
	dirA, dirB := dataDirs(t)
	ctx := context.Background()

	a := start(t, ns, dirA)
	ca := a.ready(t)
	if err := ca.Configure(ctx, netapi.Config{NodeID: "n1", ClusterID: "c1", Subnet: "10.64.1.0/24"}); err != nil {
		t.Fatal(err)
	}
	ports := []wire.PortMapping{{HostPort: 18080, InstancePort: 8080, Protocol: wire.ProtocolTCP}}
	at, err := ca.Attach(ctx, "web.0", netapi.AttachRequest{Ports: ports})
	if err != nil || !slices.Equal(at.Ports, ports) {
		t.Fatalf("Attach = %+v, %v; want the ports %+v", at, err, ports)
	}
	before := devices(t, ns)
	for _, name := range []string{"thk0", "thkvx0"} {
		if d := before[name]; d == nil || d.Alias != "thicket-net:"+dirA {
			t.Fatalf("%s after Configure: %+v, want alias thicket-net:%s", name, d, dirA)
		}
	}

	// A second one beside it: refused at start.
	b := start(t, ns, dirB)
	code, out := b.exit(t)
	want := fmt.Sprintf("another thicket-net is running in this network namespace (pid %d, --data-dir %s, --socket %s) "+
		"and owns thk0, thkvx0 and the nftables table ip thicket: stop it, or run this one in another network namespace",
		a.cmd.Process.Pid, dirA, a.socket)
	if code == 0 || !strings.Contains(out, want) {
		t.Errorf("second thicket-net in the namespace: exit %d, output:\n%s\nwant the message: %s", code, out, want)
	}
	if _, err := os.Stat(b.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused thicket-net made its socket: %v", err)
	}
	if st, err := ca.Status(ctx); err != nil || !st.Ready || st.Node.Subnet != "10.64.1.0/24" {
		t.Errorf("first thicket-net after the second was refused: %+v, %v", st, err)
	}
	if as, err := ca.Attachments(ctx); err != nil || !reflect.DeepEqual(as, []netapi.Attachment{at}) {
		t.Errorf("Attachments = %+v, %v; want [%+v]", as, err, at)
	}
	sameDevices(t, "after the refused start", devices(t, ns), before)

	// The first stops; its devices stay, marked as dirA's.
	a.stop(t)
	c := start(t, ns, dirB)
	code, out = c.exit(t)
	want = fmt.Sprintf("thk0 belongs to the thicket-net with --data-dir %s, not to this one (--data-dir %s): "+
		"run this one with --data-dir %s, or, if that node is gone, remove its devices: "+
		"ip link del thk0; ip link del thkvx0 (scripts/stop.sh --purge removes them with the rest of that node)", dirA, dirB, dirA)
	if code == 0 || !strings.Contains(out, want) {
		t.Errorf("thicket-net with another data dir on the devices left behind: exit %d, output:\n%s\nwant the message: %s", code, out, want)
	}
	sameDevices(t, "after the refused start with another data dir", devices(t, ns), before)

	// The same data dir adopts devices and instance.
	d := start(t, ns, dirA)
	cd := d.ready(t)
	if st, err := cd.Status(ctx); err != nil || !st.Ready || st.Node.Subnet != "10.64.1.0/24" {
		t.Errorf("restarted thicket-net: %+v, %v", st, err)
	}
	if as, err := cd.Attachments(ctx); err != nil || !reflect.DeepEqual(as, []netapi.Attachment{at}) {
		t.Errorf("Attachments after the restart = %+v, %v; want [%+v]", as, err, at)
	}
	if _, err := os.Stat(at.Netns); err != nil {
		t.Errorf("instance namespace after the restart: %v", err)
	}
	sameDevices(t, "after adoption", devices(t, ns), before)
	if err := cd.Detach(ctx, at.Key); err != nil {
		t.Fatal(err)
	}
	d.stop(t)
}

// TestConfigureConflictingSubnet: a bridge that holds an address of another
// subnet (made by hand or by an older version: no mark) does not stop
// thicket-net from starting, but configuring the node with another subnet
// is a 409 with one actionable line, logged once however often the node
// engine retries; the bridge is left as it was. The subnet it fits is
// adopted.
func TestConfigureConflictingSubnet(t *testing.T) {
	ns := testNetns(t)
	ip(t, ns, "link", "add", "thk0", "type", "bridge")
	ip(t, ns, "addr", "add", "10.64.9.1/24", "dev", "thk0")
	dir, _ := dataDirs(t)
	ctx := context.Background()
	m := start(t, ns, dir)
	c := m.ready(t)
	before := devices(t, ns)

	msg := "thk0 already has address 10.64.9.1/24, outside this node's subnet 10.64.1.0/24 (it wants 10.64.1.1/24): " +
		"another thicket-net (an older version, or with another --data-dir) or someone else set it up for another subnet; " +
		"remove the devices: ip link del thk0; ip link del thkvx0 (scripts/stop.sh --purge removes them with the rest of that node), " +
		"or run this thicket-net in another network namespace"
	cfg := netapi.Config{NodeID: "n1", ClusterID: "c1", Subnet: "10.64.1.0/24"}
	// What the node engine sees.
	if err := c.Configure(ctx, cfg); err == nil || err.Error() != "net manager: PUT /v1/network: "+msg {
		t.Errorf("Configure with a conflicting subnet: %v\nwant net manager: PUT /v1/network: %s", err, msg)
	}
	// On the wire.
	code, e := putNetwork(t, m.socket, cfg)
	if code != http.StatusConflict || e.Error != msg {
		t.Errorf("PUT /v1/network: %d %q; want %d %q", code, e.Error, http.StatusConflict, msg)
	}
	if st, err := c.Status(ctx); err != nil || st.Ready {
		t.Errorf("Status after the refused Configure: %+v, %v", st, err)
	}
	sameDevices(t, "after the refused Configure", devices(t, ns), before)
	if n := strings.Count(m.output(), "level=WARN msg=configure"); n != 1 {
		t.Errorf("the same Configure error was warned about %d times, want once:\n%s", n, m.output())
	}

	// The subnet the bridge has: adopted (same device) and marked.
	cfg.Subnet = "10.64.9.0/24"
	if err := c.Configure(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	after := devices(t, ns)
	if br := after["thk0"]; br == nil || br.Index != before["thk0"].Index || br.Alias != "thicket-net:"+dir ||
		!slices.Equal(br.Addrs, []string{"10.64.9.1/24"}) {
		t.Errorf("thk0 after Configure with its subnet: %+v (was %+v)", br, before["thk0"])
	}
	m.stop(t)
}

// putNetwork does the node engine's PUT /v1/network by hand, for the status.
func putNetwork(t *testing.T, socket string, cfg netapi.Config) (int, netapi.Error) {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	body, _ := json.Marshal(cfg)
	req, _ := http.NewRequest(http.MethodPut, "http://thicket-net/v1/network", bytes.NewReader(body))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e netapi.Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e
}

// tcpListeners returns the local addresses (hex, as /proc/net/tcp writes
// them) of the TCP sockets listening in the network namespace of pid.
func tcpListeners(t *testing.T, pid int) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if fs := strings.Fields(line); len(fs) > 3 && fs[3] == "0A" { // LISTEN
				out = append(out, fs[1])
			}
		}
	}
	return out
}

// netnsClient is an HTTP client whose connections are made inside the
// network namespace ns.
func netnsClient(ns string) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		// A socket belongs to the namespace of the thread that made it.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return nil, err
		}
		defer orig.Close()
		target, err := netns.GetFromPath(ns)
		if err != nil {
			return nil, err
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			return nil, err
		}
		defer netns.Set(orig)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dial}}
}

// TestPprofFlag: without --pprof thicket-net listens on no TCP port (its API
// is a unix socket); with it, the Go profiles answer at the address it logs.
func TestPprofFlag(t *testing.T) {
	ns := testNetns(t)
	dir, _ := dataDirs(t)

	m := start(t, ns, dir)
	m.ready(t)
	if l := tcpListeners(t, m.cmd.Process.Pid); len(l) != 0 {
		t.Errorf("without --pprof thicket-net listens on TCP %v", l)
	}
	m.stop(t)

	m = start(t, ns, dir, "--pprof", "127.0.0.1:0")
	m.ready(t)
	found := regexp.MustCompile(`address=(http://127\.0\.0\.1:[0-9]+/debug/pprof/)`).FindStringSubmatch(m.output())
	if found == nil {
		t.Fatalf("thicket-net --pprof logged no address:\n%s", m.output())
	}
	if l := tcpListeners(t, m.cmd.Process.Pid); len(l) != 1 {
		t.Errorf("with --pprof thicket-net listens on TCP %v, want one address", l)
	}
	resp, err := netnsClient(ns).Get(found[1])
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Errorf("GET %s: %d %v\n%s", found[1], resp.StatusCode, err, body)
	}
	m.stop(t)
}
