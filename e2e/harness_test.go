// Package e2e runs Thicket end to end on this machine, as root: a real
// thicket-root, thicket-cluster processes (one with the embedded MQTT
// broker, one with Mosquitto) and thicket-node processes, each node in its
// own network namespace ("host") on a bridge, all running real containers
// through containerd and runc, pulled from a registry on 127.0.0.1.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
)

var (
	// bin holds the programs, built once by TestMain (and the CLI, built
	// when a test needs it).
	bin *testharness.Bin
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
	code := testharness.Main(m, &bin, testharness.Daemons...)
	if code == 0 {
		if err := writeChaosDoc(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// --- network: a bridge on the host and one namespace per node ---

// bridgeAddr is this machine's address on the bridge.
var bridgeAddr = testharness.E2ENetwork.Prefix + ".1"

// network is the suite's bridge, with hosts 10.213.0.<octet> named
// thk<runID>-<octet>, joined by veth thkv<runID><octet>.
type network struct {
	*testharness.Network
	t testing.TB
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
	c := testharness.E2ENetwork
	c.HostPrefix, c.VethPrefix = "thk"+runID, "thkv"+runID
	return &network{t: t, Network: testharness.MustNetwork(t, c)}
}

// addHost makes a network namespace with address 10.213.0.<octet> on the
// bridge and returns the namespace's name and path.
func (n *network) addHost(octet int) (name, path, addr string) {
	n.t.Helper()
	h := n.MustAddHost(n.t, octet)
	return h.Netns, h.Path, h.Addr
}

// --- processes ---

// proc is a daemon started by the test; restart runs it again with the same
// command line.
type proc struct {
	*testharness.Proc
	t testing.TB
}

// startProc starts a program for the rest of the test.
func startProc(t testing.TB, name string, argv ...string) *proc {
	t.Helper()
	return &proc{Proc: testharness.MustStart(t, &testharness.Proc{Name: name, Args: argv}), t: t}
}

func (p *proc) restart() {
	p.t.Helper()
	if err := p.Start(); err != nil {
		p.t.Fatal(err)
	}
}

// --- the root's API ---

// rootAPI is the tests' client of the root: api.Client, failing the test
// on errors. Tests that look at status codes and raw bodies use do.
type rootAPI struct {
	t   testing.TB
	url string
	ca  string // the root's CA certificate file ("" for plain HTTP)

	mu sync.Mutex
	cl *api.Client
}

// client is the client, logged in once login has been called.
func (a *rootAPI) client() *api.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cl == nil {
		a.cl = api.NewClient(api.Config{Address: a.url, CAFile: a.ca})
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
	c := api.NewClient(api.Config{Address: a.url, CAFile: a.ca, Username: user, Password: pw})
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
	testharness.WaitFor(a.t, timeout, fmt.Sprintf("instance %d of %s %s", n, id, what), func() (bool, string) {
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
