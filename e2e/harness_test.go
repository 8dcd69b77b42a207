// Package e2e runs Thicket end to end on this machine, as root: a real
// thicket-root, thicket-cluster processes (one with the embedded MQTT
// broker, one with Mosquitto) and thicket-node processes, each node in its
// own network namespace ("host") on a bridge, all running real containers
// through containerd and runc, pulled from a registry on 127.0.0.1.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

var (
	binDir string
	// runID keeps this run's names (nodes, namespaces, containerd
	// namespace) apart from any other run's leftovers.
	runID string
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: must run as root (network namespaces, containerd); .ci/run does")
		os.Exit(1)
	}
	if _, err := os.Stat("/run/containerd/containerd.sock"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: containerd is not running (/run/containerd/containerd.sock); .ci/run starts it:", err)
		os.Exit(1)
	}
	var b [3]byte
	rand.Read(b[:])
	runID = hex.EncodeToString(b[:])
	dir, err := os.MkdirTemp("", "thicket-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, pkg := range []string{"../root_orchestrator/cmd/thicket-root", "../cluster_orchestrator/cmd/thicket-cluster",
		"../node_engine/cmd/thicket-node", "../net_manager/cmd/thicket-net"} {
		cmd := exec.Command("go", "build", "-o", binDir+"/", pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: build", pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if code == 0 {
		if err := writeChaosDoc(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			code = 1
		}
	}
	os.RemoveAll(binDir)
	os.Exit(code)
}

// --- network: a bridge on the host and one namespace per node ---

const (
	bridgeName = "thke2e0"
	bridgeAddr = "10.213.0.1"
)

type network struct {
	t     testing.TB
	hosts []string
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// newNetwork creates the bridge. Hosts are added with addHost.
func newNetwork(t testing.TB) *network {
	exec.Command("ip", "link", "del", bridgeName).Run() // a leftover of an interrupted run
	run(t, "ip", "link", "add", bridgeName, "type", "bridge")
	run(t, "ip", "addr", "add", bridgeAddr+"/24", "dev", bridgeName)
	run(t, "ip", "link", "set", bridgeName, "up")
	n := &network{t: t}
	t.Cleanup(n.close)
	return n
}

// addHost makes a network namespace with address 10.213.0.<octet> on the
// bridge and returns the namespace's name and path.
func (n *network) addHost(octet int) (name, path, addr string) {
	name = fmt.Sprintf("thk%s-%d", runID, octet)
	veth := fmt.Sprintf("thkv%s%d", runID, octet)
	addr = fmt.Sprintf("10.213.0.%d", octet)
	run(n.t, "ip", "netns", "add", name)
	n.hosts = append(n.hosts, name)
	run(n.t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
	run(n.t, "ip", "link", "set", veth, "master", bridgeName, "up")
	run(n.t, "ip", "-n", name, "addr", "add", addr+"/24", "dev", "eth0")
	run(n.t, "ip", "-n", name, "link", "set", "eth0", "up")
	run(n.t, "ip", "-n", name, "link", "set", "lo", "up")
	run(n.t, "ip", "-n", name, "route", "add", "default", "via", bridgeAddr)
	return name, "/run/netns/" + name, addr
}

func (n *network) close() {
	for _, h := range n.hosts {
		exec.Command("ip", "netns", "del", h).Run()
	}
	exec.Command("ip", "link", "del", bridgeName).Run()
}

// --- processes ---

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a daemon started by the test; restart runs it again with the same
// command line.
type proc struct {
	t      testing.TB
	name   string
	argv   []string
	env    []string // added to this process's environment
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan struct{}
}

func startProc(t testing.TB, name string, argv ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, argv: argv, logs: &syncBuffer{}}
	p.start()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- %s log ---\n%s", p.name, tail(p.logs.String(), 6000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func (p *proc) start() {
	p.cmd = exec.Command(p.argv[0], p.argv[1:]...)
	if len(p.env) > 0 {
		p.cmd.Env = append(os.Environ(), p.env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(p.cmd, p.exited)
}

// kill ends the process with SIGKILL, as a crash would.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

func (p *proc) stop() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
}

// listening waits until the daemon logs ready (true), or exits because its
// port was taken meanwhile (false: start it again on other ports; freePort
// can only pick a port that is free now). Any other exit fails the test.
func (p *proc) listening(t testing.TB, timeout time.Duration, ready string) bool {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if strings.Contains(p.logs.String(), ready) {
			return true
		}
		select {
		case <-p.exited:
			p.cmd = nil
			if strings.Contains(p.logs.String(), "address already in use") {
				t.Logf("%s: port taken meanwhile; starting again", p.name)
				return false
			}
			t.Fatalf("%s exited during start:\n%s", p.name, tail(p.logs.String(), 4000))
		case <-deadline:
			t.Fatalf("%s not ready within %s:\n%s", p.name, timeout, tail(p.logs.String(), 4000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *proc) restart() {
	p.start()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		if state != "" {
			last = state
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last seen: %s", what, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// --- the root's API ---

// rootAPI is the tests' client of the root: api.Client, failing the test
// on errors. Tests that look at status codes and raw bodies use do.
type rootAPI struct {
	t   testing.TB
	url string

	mu sync.Mutex
	cl *api.Client
}

// client is the client, logged in once login has been called.
func (a *rootAPI) client() *api.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cl == nil {
		a.cl = api.NewClient(api.Config{Address: a.url})
	}
	return a.cl
}

// ctx bounds one call.
func (a *rootAPI) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// do sends a request with the session's token and returns the answer as
// it came; a request without an answer is status 0 with the error as body.
func (a *rootAPI) do(method, path string, body any) (int, []byte) {
	a.t.Helper()
	ctx, cancel := a.ctx()
	defer cancel()
	r, err := a.client().Raw(ctx, method, path, body)
	if err != nil {
		return 0, []byte(err.Error())
	}
	return r.Status, r.Body
}

// must calls the API and fails the test unless the answer is 200; it
// decodes the answer into out when out is not nil.
func (a *rootAPI) must(method, path string, body, out any) {
	a.t.Helper()
	ctx, cancel := a.ctx()
	defer cancel()
	if err := a.client().Do(ctx, method, path, body, out); err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
}

// login logs in; the client logs in again by itself when its session
// expires.
func (a *rootAPI) login(user, pw string) {
	a.t.Helper()
	c := api.NewClient(api.Config{Address: a.url, Username: user, Password: pw})
	ctx, cancel := a.ctx()
	defer cancel()
	if _, err := c.Login(ctx, user, pw); err != nil {
		a.t.Fatalf("login as %s: %v", user, err)
	}
	a.mu.Lock()
	a.cl = c
	a.mu.Unlock()
}

func (a *rootAPI) service(id string) api.Service {
	a.t.Helper()
	ctx, cancel := a.ctx()
	defer cancel()
	s, err := a.client().Service(ctx, id)
	if err != nil {
		a.t.Fatalf("service %s: %v", id, err)
	}
	return *s
}

func (a *rootAPI) instance(id string, n int) (api.Instance, bool) {
	a.t.Helper()
	ctx, cancel := a.ctx()
	defer cancel()
	in, ok, err := a.client().Instance(ctx, id, n)
	if err != nil {
		a.t.Fatalf("instance %d of %s: %v", n, id, err)
	}
	return in, ok
}

// waitInstance waits until instance n of a service satisfies cond.
func (a *rootAPI) waitInstance(id string, n int, timeout time.Duration, what string, cond func(api.Instance) bool) api.Instance {
	a.t.Helper()
	var got api.Instance
	waitFor(a.t, timeout, fmt.Sprintf("instance %d of %s %s", n, id, what), func() (bool, string) {
		in, ok := a.instance(id, n)
		got = in
		return ok && cond(in), fmt.Sprintf("%s (%s) on %q", in.Status, in.StatusDetail, in.NodeName)
	})
	return got
}

func running(in api.Instance) bool { return in.Status == wire.StatusRunning }

// httpGet fetches a URL with a short timeout.
func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// --- containerd, seen with ctr ---

// containers lists the containers in a containerd namespace whose labels
// match, e.g. "thicket.instance==<key>".
func containers(t testing.TB, ns string, filter string) []string {
	t.Helper()
	out, err := exec.Command("ctr", "-n", ns, "containers", "ls", "-q", filter).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr containers ls: %v: %s", err, out)
	}
	return strings.Fields(string(out))
}

func snapshots(t testing.TB, ns string) []string {
	t.Helper()
	out, err := exec.Command("ctr", "-n", ns, "snapshots", "ls").CombinedOutput()
	if err != nil {
		t.Fatalf("ctr snapshots ls: %v: %s", err, out)
	}
	var keys []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 0 {
			keys = append(keys, f[0])
		}
	}
	return keys
}

// cleanContainerd removes everything this run left in its namespace.
func cleanContainerd(ns string) {
	out, _ := exec.Command("ctr", "-n", ns, "tasks", "ls", "-q").Output()
	for _, id := range strings.Fields(string(out)) {
		exec.Command("ctr", "-n", ns, "tasks", "kill", "-s", "SIGKILL", id).Run()
	}
	time.Sleep(500 * time.Millisecond)
	for _, id := range strings.Fields(string(out)) {
		exec.Command("ctr", "-n", ns, "tasks", "delete", "-f", id).Run()
	}
	out, _ = exec.Command("ctr", "-n", ns, "containers", "ls", "-q").Output()
	for _, id := range strings.Fields(string(out)) {
		exec.Command("ctr", "-n", ns, "containers", "delete", id).Run()
	}
	out, _ = exec.Command("ctr", "-n", ns, "images", "ls", "-q").Output()
	for _, ref := range strings.Fields(string(out)) {
		exec.Command("ctr", "-n", ns, "images", "rm", ref).Run()
	}
	// containerd removes an image's content in the background: the
	// namespace is empty, and removable, a moment later.
	for range 20 {
		if exec.Command("ctr", "namespaces", "rm", ns).Run() == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
