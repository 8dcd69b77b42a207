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
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
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

type rootAPI struct {
	t     testing.TB
	url   string
	token string
}

func (a *rootAPI) do(method, path string, body any) (int, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, a.url+path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (a *rootAPI) must(method, path string, body, out any) {
	a.t.Helper()
	code, b := a.do(method, path, body)
	if code != http.StatusOK {
		a.t.Fatalf("%s %s: %d %s", method, path, code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

func (a *rootAPI) login(user, pw string) {
	a.t.Helper()
	var tok api.Tokens
	a.token = ""
	a.must("POST", "/api/auth/login", api.LoginRequest{Username: user, Password: pw}, &tok)
	a.token = tok.Token
}

func (a *rootAPI) service(id string) api.Service {
	a.t.Helper()
	var s api.Service
	a.must("GET", "/api/service/"+id, nil, &s)
	return s
}

func (a *rootAPI) instance(id string, n int) (api.Instance, bool) {
	for _, in := range a.service(id).InstanceList {
		if in.InstanceNumber == n {
			return in, true
		}
	}
	return api.Instance{}, false
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
