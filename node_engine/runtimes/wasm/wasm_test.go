package wasm_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/internal/cgroup"
	"github.com/thicket-edge/thicket/node_engine/internal/diskgc"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
	"github.com/thicket-edge/thicket/node_engine/runtimes/runtimetest"
	"github.com/thicket-edge/thicket/node_engine/runtimes/wasm"
	"github.com/thicket-edge/thicket/node_engine/testimage"
)

// Every test serves its modules from one server under names of its own, so
// that request counts do not mix.
var (
	server  *testimage.WasmServer
	appData []byte
	nameSeq atomic.Int64
)

func TestMain(m *testing.M) {
	// The runtime runs each module in a sandbox process: this test binary
	// again, as thicket-node runs itself.
	if len(os.Args) > 1 && os.Args[1] == wasm.ChildCommand {
		os.Exit(wasm.RunChild())
	}
	code := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		t0 := time.Now()
		var err error
		server, err = testimage.NewWasmServer(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer server.Close()
		appData = server.Module(testimage.WasmAppName)
		fmt.Fprintf(os.Stderr, "built the wasm test module (%d bytes) in %v\n", len(appData), time.Since(t0).Round(time.Millisecond))
		return m.Run()
	}()
	os.Exit(code)
}

// testPolicy lets the runtime fetch from 127.0.0.1 without pins: what
// most tests serve.
func testPolicy() *fetch.Policy {
	return &fetch.Policy{AllowUnpinned: true, Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
}

// strictPolicy gives the runtime the node's default code policy.
func strictPolicy(c *wasm.Config) { c.Policy = &fetch.Policy{} }

// serveApp serves the test module under a fresh name and returns its name
// and URL.
func serveApp(t *testing.T) (name, url string) {
	t.Helper()
	name = fmt.Sprintf("app%d.wasm", nameSeq.Add(1))
	return name, server.Add(name, appData)
}

func newRuntime(t *testing.T, mod ...func(*wasm.Config)) *wasm.Runtime {
	t.Helper()
	cfg := wasm.Config{NodeName: "n1", StateDir: t.TempDir()}
	for _, f := range mod {
		f(&cfg)
	}
	return openRuntime(t, cfg)
}

func openRuntime(t *testing.T, cfg wasm.Config) *wasm.Runtime {
	t.Helper()
	if cfg.Policy == nil {
		// The tests serve modules on 127.0.0.1, mostly unpinned.
		cfg.Policy = testPolicy()
	}
	rt, err := wasm.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("wasm.New: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		removeAll(t, cfg)
	})
	if err := rt.Available(context.Background()); err != nil {
		t.Fatalf("Available: %v", err)
	}
	if rt.Virtualization() != "wasm" {
		t.Fatalf("Virtualization = %q", rt.Virtualization())
	}
	return rt
}

// removeAll removes every instance left under cfg's state directory: the
// sandboxes outlive their runtime.
func removeAll(t *testing.T, cfg wasm.Config) {
	t.Helper()
	rt, err := wasm.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Errorf("wasm.New to clean up: %v", err)
		return
	}
	defer rt.Close()
	ctx := context.Background()
	states, _ := rt.List(ctx)
	for _, st := range states {
		if err := rt.Remove(ctx, st.Key); err != nil {
			t.Errorf("clean up %s: %v", st.Key, err)
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func spec(key, url string, memMB int64, cmd ...string) wire.InstanceSpec {
	return wire.InstanceSpec{
		Key:              key,
		ServiceID:        strings.Split(key, ".")[0],
		ApplicationName:  "app",
		MicroserviceName: "wasmapp",
		Virtualization:   "wasm",
		Code:             url,
		Cmd:              cmd,
		Environment:      []string{"GREETING=hi there"},
		Resources:        wire.Resources{MilliCPU: 100, MemoryMB: memMB},
		OneShot:          true,
	}
}

// rawModule is a minimal WASI command without imports: its _start runs
// body (instructions, without the final end).
func rawModule(body ...byte) []byte {
	code := append([]byte{0x00}, body...) // no locals
	code = append(code, 0x0b)             // end
	sec := func(id byte, content ...byte) []byte {
		return append([]byte{id, byte(len(content))}, content...)
	}
	m := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	m = append(m, sec(1, 0x01, 0x60, 0x00, 0x00)...)                               // type 0: () -> ()
	m = append(m, sec(3, 0x01, 0x00)...)                                           // func 0: type 0
	m = append(m, sec(7, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00)...) // export _start = func 0
	m = append(m, sec(10, append([]byte{0x01, byte(len(code))}, code...)...)...)   // code
	return m
}

var (
	trapModule   = rawModule(0x00) // unreachable
	returnModule = rawModule()     // returns without proc_exit
)

func TestRun(t *testing.T) {
	rt := newRuntime(t)
	_, appURL := serveApp(t)
	trapURL := server.Add("trap.wasm", trapModule)
	returnURL := server.Add("return.wasm", returnModule)
	for _, tc := range []struct {
		name     string
		url      string
		memMB    int64
		cmd      []string
		status   string
		code     int
		detail   string   // Detail holds it
		logs     []string // the log holds them
		noGreets bool
	}{
		{name: "hello", url: appURL, status: wire.StatusCompleted, detail: "exited with code 0",
			logs: []string{`hello from wasm args=[] GREETING="hi there"`}},
		{name: "args", url: appURL, cmd: []string{"exit", "0"}, status: wire.StatusCompleted,
			logs: []string{`hello from wasm args=["exit" "0"] GREETING="hi there"`, "exiting with code 0"}},
		{name: "exit3", url: appURL, cmd: []string{"exit", "3"}, status: wire.StatusFailed, code: 3,
			detail: "exited with code 3", logs: []string{"exiting with code 3"}},
		{name: "alloc-over-limit", url: appURL, memMB: 16, cmd: []string{"alloc", "64"}, status: wire.StatusFailed, code: 2,
			detail: "out of memory: the module tried to grow its memory to", logs: []string{"allocating 64 MiB", "out of memory"}},
		{name: "alloc-within-limit", url: appURL, memMB: 256, cmd: []string{"alloc", "64"}, status: wire.StatusCompleted,
			logs: []string{"allocated 64 MiB"}},
		{name: "trap", url: trapURL, status: wire.StatusFailed, code: wasm.TrapExitCode, detail: "trap: wasm error: unreachable", noGreets: true},
		{name: "return", url: returnURL, status: wire.StatusCompleted, detail: "exited with code 0", noGreets: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			s := spec(tc.name+".0", tc.url, tc.memMB, tc.cmd...)
			t0 := time.Now()
			if err := rt.Start(ctx, s); err != nil {
				t.Fatalf("Start: %v", err)
			}
			t.Logf("Start took %v", time.Since(t0).Round(time.Millisecond))
			ev := runtimetest.WaitEvent(t, rt, s.Key, time.Minute)
			t.Logf("event: %s code %d: %s", ev.Status, ev.ExitCode, ev.Detail)
			if ev.Status != tc.status || ev.ExitCode != tc.code {
				t.Fatalf("event = %s code %d (%s), want %s code %d", ev.Status, ev.ExitCode, ev.Detail, tc.status, tc.code)
			}
			if !strings.Contains(ev.Detail, tc.detail) {
				t.Errorf("detail = %q, want it to hold %q", ev.Detail, tc.detail)
			}
			if tc.memMB == 16 && !strings.Contains(ev.Detail, "over the memory limit of 16 MiB") {
				t.Errorf("detail = %q, want it to name the limit", ev.Detail)
			}
			if ev.Spec.Key != s.Key || ev.StartedAt.IsZero() || ev.ExitedAt.Before(ev.StartedAt) {
				t.Errorf("event lacks spec or times: %+v", ev)
			}
			st, ok := runtimetest.Find(t, rt, s.Key)
			if !ok || st.Status != tc.status || st.ExitCode != tc.code || st.Spec.Code != s.Code {
				t.Errorf("List = %+v (found %v), want %s code %d", st, ok, tc.status, tc.code)
			}
			logs, err := rt.Logs(ctx, s.Key, 1<<20)
			if err != nil {
				t.Fatalf("Logs: %v", err)
			}
			for _, want := range tc.logs {
				if !strings.Contains(logs, want) {
					t.Errorf("logs lack %q:\n%s", want, logs)
				}
			}
			for _, l := range wire.ParseLog(logs) { // timestamped records, streams marked
				if l.Time.Before(t0) || l.Stream != wire.StreamStdout && l.Stream != wire.StreamStderr {
					t.Errorf("log line %+v is not a record written since %s", l, t0)
				}
			}
			if !tc.noGreets && !strings.Contains(logs, "hello from wasm") {
				t.Errorf("logs lack the greeting:\n%s", logs)
			}
			if u, err := rt.Usage(ctx, s.Key); err != nil || u != (runtimes.Usage{}) {
				t.Errorf("Usage of an exited instance = %+v, %v; want zero", u, err)
			}
			if err := rt.Remove(ctx, s.Key); err != nil {
				t.Fatalf("Remove: %v", err)
			}
		})
	}
	runtimetest.NoEvent(t, rt, 100*time.Millisecond)
}

func TestRemoveRunning(t *testing.T) {
	rt := newRuntime(t)
	_, url := serveApp(t)
	ctx := testCtx(t)
	s := spec("sleeper.0", url, 64, "sleep", "30")
	if err := rt.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	st, ok := runtimetest.Find(t, rt, s.Key)
	if !ok || st.Status != wire.StatusRunning || st.Spec.Key != s.Key || st.Spec.Resources != s.Resources || st.StartedAt.IsZero() {
		t.Fatalf("List = %+v (found %v), want RUNNING with its spec", st, ok)
	}
	// Start of a running instance with the same spec is a no-op.
	if err := rt.Start(ctx, s); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if again, _ := runtimetest.Find(t, rt, s.Key); again.StartedAt != st.StartedAt || again.Status != wire.StatusRunning {
		t.Errorf("second Start restarted the instance: %+v", again)
	}
	runtimetest.WaitLog(t, rt, s.Key, "sleeping 30 s", 10*time.Second)
	u, err := rt.Usage(ctx, s.Key)
	if err != nil || u.MemoryMB <= 0 || u.MemoryMB > 64+wasm.SandboxOverheadMB || u.CPUPercent != 0 {
		t.Errorf("Usage = %+v, %v; want 0 < MemoryMB <= %d, CPUPercent 0 (first call)", u, err, 64+wasm.SandboxOverheadMB)
	}
	t.Logf("Usage of a sleeping module: %+v", u)
	pid := rt.Pid(s.Key)
	if pid == 0 {
		t.Fatal("no sandbox process")
	}
	logFile := filepath.Join(rt.Config().StateDir, "wasm", "logs", s.Key+".log")
	if _, err := os.Stat(logFile); err != nil {
		t.Errorf("log file: %v", err)
	}

	t0 := time.Now()
	if err := rt.Remove(ctx, s.Key); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	took := time.Since(t0)
	t.Logf("Remove of a sleeping module took %v", took)
	if took > time.Second {
		t.Errorf("Remove took %v, want under a second", took)
	}
	if _, ok := runtimetest.Find(t, rt, s.Key); ok {
		t.Errorf("List still shows %s", s.Key)
	}
	if _, err := os.Stat(logFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log file after Remove: %v, want none", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the sandbox process %d after Remove: kill 0 = %v, want ESRCH", pid, err)
	}
	if _, err := rt.Logs(ctx, s.Key, 100); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("Logs after Remove: %v, want ErrNotFound", err)
	}
	if _, err := rt.Usage(ctx, s.Key); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("Usage after Remove: %v, want ErrNotFound", err)
	}
	runtimetest.NoEvent(t, rt, 300*time.Millisecond)
	if err := rt.Remove(ctx, s.Key); err != nil {
		t.Errorf("Remove of an unknown key: %v", err)
	}
}

// TestCached: a second instance, a restart and a new runtime on the same
// state directory neither download nor (in memory) compile again.
func TestCached(t *testing.T) {
	stateDir := t.TempDir()
	cfg := wasm.Config{NodeName: "n1", StateDir: stateDir}
	rt := openRuntime(t, cfg)
	name, url := serveApp(t)
	ctx := testCtx(t)

	// No CPU limit: the times compare caching, not a tenth of a core.
	a := spec("a.0", url, 0)
	a.Resources.MilliCPU = 0
	t0 := time.Now()
	if err := rt.Start(ctx, a); err != nil {
		t.Fatalf("Start a: %v", err)
	}
	first := time.Since(t0)
	if ev := runtimetest.WaitEvent(t, rt, a.Key, time.Minute); ev.Status != wire.StatusCompleted {
		t.Fatalf("a: %+v", ev)
	}

	b := spec("b.0", url, 0)
	b.Resources.MilliCPU = 0
	t0 = time.Now()
	if err := rt.Start(ctx, b); err != nil {
		t.Fatalf("Start b: %v", err)
	}
	second := time.Since(t0)
	if ev := runtimetest.WaitEvent(t, rt, b.Key, time.Minute); ev.Status != wire.StatusCompleted {
		t.Fatalf("b: %+v", ev)
	}
	t.Logf("first Start (download + compile) %v, second Start (cached) %v", first.Round(time.Millisecond), second.Round(time.Microsecond))
	if got := server.Requests(name); got != 1 {
		t.Errorf("%d requests for the module, want 1", got)
	}
	if got := rt.Compilations(); got != 1 {
		t.Errorf("%d compilations, want 1", got)
	}
	if second > first/2 {
		t.Errorf("second Start took %v (first %v): not cached?", second, first)
	}

	// A Start of an exited instance runs it again, appending to its log.
	t0 = time.Now()
	if err := rt.Start(ctx, a); err != nil {
		t.Fatalf("restart a: %v", err)
	}
	restart := time.Since(t0)
	ev := runtimetest.WaitEvent(t, rt, a.Key, time.Minute)
	if ev.Status != wire.StatusCompleted {
		t.Fatalf("restarted a: %+v", ev)
	}
	logs, _ := rt.Logs(ctx, a.Key, 1<<20)
	if n := strings.Count(logs, "hello from wasm"); n != 2 {
		t.Errorf("log of a restarted instance holds %d greetings, want 2:\n%s", n, logs)
	}
	t.Logf("restart took %v", restart.Round(time.Microsecond))
	if server.Requests(name) != 1 || rt.Compilations() != 1 {
		t.Errorf("restart downloaded (%d requests) or compiled (%d)", server.Requests(name), rt.Compilations())
	}

	// A changed spec replaces the instance: a fresh log.
	a2 := a
	a2.Cmd = []string{"exit", "5"}
	if err := rt.Start(ctx, a2); err != nil {
		t.Fatalf("Start a with a new spec: %v", err)
	}
	if ev := runtimetest.WaitEvent(t, rt, a.Key, time.Minute); ev.Status != wire.StatusFailed || ev.ExitCode != 5 || ev.Spec.Cmd[1] != "5" {
		t.Fatalf("replaced a: %+v", ev)
	}
	logs, _ = rt.Logs(ctx, a.Key, 1<<20)
	if n := strings.Count(logs, "hello from wasm"); n != 1 {
		t.Errorf("log of a replaced instance holds %d greetings, want 1:\n%s", n, logs)
	}

	// A new runtime lists the exited instances as they ended, and runs
	// them again from the disk caches.
	if err := rt.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	rt2 := openRuntime(t, cfg)
	if st, ok := runtimetest.Find(t, rt2, a.Key); !ok || st.Status != wire.StatusFailed || st.ExitCode != 5 || st.Spec.Cmd[1] != "5" {
		t.Fatalf("a in a new runtime: %+v (found %v), want FAILED with code 5", st, ok)
	}
	t0 = time.Now()
	if err := rt2.Start(ctx, a); err != nil { // a new spec again: replaced
		t.Fatalf("Start after a restart: %v", err)
	}
	afterRestart := time.Since(t0)
	if ev := runtimetest.WaitEvent(t, rt2, a.Key, time.Minute); ev.Status != wire.StatusCompleted {
		t.Fatalf("a after a restart: %+v", ev)
	}
	t.Logf("Start in a new runtime (disk caches) took %v", afterRestart.Round(time.Millisecond))
	if got := server.Requests(name); got != 1 {
		t.Errorf("%d requests after a restart, want 1 (disk cache)", got)
	}
	if rt2.Downloads() != 0 {
		t.Errorf("new runtime downloaded %d times", rt2.Downloads())
	}
	if afterRestart > first/2 {
		t.Errorf("Start from wazero's disk cache took %v, first %v: not cached?", afterRestart, first)
	}
}

func TestStartErrors(t *testing.T) {
	_, url := serveApp(t)
	sum := sha256.Sum256(appData)
	good := hex.EncodeToString(sum[:])
	bad := strings.Repeat("ab", 32)
	closed := fmt.Sprintf("127.0.0.1:%d", testharness.FreePort(t))
	for _, tc := range []struct {
		name  string
		cfg   func(*wasm.Config)
		code  string
		memMB int64
		env   []string
		want  string // the error holds it; "" = no error
	}{
		{name: "digest-ok", code: url + "#sha256=" + good},
		{name: "digest-mismatch", code: url + "#sha256=" + bad, want: "has sha256 " + good + ", want " + bad},
		{name: "bad-fragment", code: url + "#md5=abc", want: "fragment must be sha256="},
		{name: "oversize", cfg: func(c *wasm.Config) { c.MaxModuleBytes = 1 << 20 }, code: url, want: "over the limit of 1048576 bytes"},
		{name: "unreachable", code: fmt.Sprintf("http://%s/x.wasm", closed), want: fmt.Sprintf("http://%s/x.wasm", closed)},
		{name: "not-found", code: server.URL + "/missing.wasm", want: server.URL + "/missing.wasm: 404 Not Found"},
		{name: "not-http", code: "file:///tmp/x.wasm", want: "want an http or https URL"},
		{name: "no-code", code: "", want: "no module URL"},
		{name: "not-wasm", code: server.Add("junk.wasm", []byte("not a module")), want: "compile module"},
		{name: "memory-below-minimum", code: url, memMB: 1, want: "over the memory limit of 1 MiB"},
		{name: "bad-env", code: url, env: []string{"NOEQUALS"}, want: `environment[0] "NOEQUALS": want KEY=value`},
		// The node's code policy: by default only pinned code from public
		// addresses.
		{name: "default-policy-loopback", cfg: strictPolicy, code: url + "#sha256=" + good, want: "127.0.0.1 is a loopback address"},
		{name: "default-policy-unpinned", cfg: strictPolicy, code: url, want: "no #sha256=<hex> pin"},
		{name: "default-policy-metadata", cfg: strictPolicy, code: "http://169.254.169.254/latest/x.wasm#sha256=" + good, want: "link-local"},
		{name: "default-policy-localhost", cfg: strictPolicy, code: strings.Replace(url, "127.0.0.1", "localhost", 1) + "#sha256=" + good, want: "localhost resolves to 127.0.0.1"},
		{name: "prefix-policy", cfg: func(c *wasm.Config) {
			c.Policy = testPolicy()
			c.Policy.URLPrefixes = []string{server.URL + "/only/"}
		}, code: url, want: "not under an allowed URL prefix"},
		{name: "allowed-network-pinned", cfg: func(c *wasm.Config) {
			c.Policy = &fetch.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
		}, code: url + "#sha256=" + good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*wasm.Config)
			if tc.cfg != nil {
				mods = append(mods, tc.cfg)
			}
			rt := newRuntime(t, mods...)
			ctx := testCtx(t)
			s := spec("e.0", tc.code, tc.memMB)
			if tc.env != nil {
				s.Environment = tc.env
			}
			err := rt.Start(ctx, s)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				if ev := runtimetest.WaitEvent(t, rt, s.Key, time.Minute); ev.Status != wire.StatusCompleted {
					t.Fatalf("event %+v", ev)
				}
				return
			}
			if err == nil {
				t.Fatalf("Start succeeded, want an error holding %q", tc.want)
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "e.0") {
				t.Errorf("error %q does not hold %q and the key", err, tc.want)
			}
			if states, _ := rt.List(ctx); len(states) != 0 {
				t.Errorf("a failed Start left %+v", states)
			}
		})
	}
}

// TestDigestRefetch: a cached module that does not match a pinned digest
// is downloaded again.
func TestDigestRefetch(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	name := fmt.Sprintf("v%d.wasm", nameSeq.Add(1))
	url := server.Add(name, returnModule)
	if err := rt.Start(ctx, spec("v.0", url, 0)); err != nil {
		t.Fatalf("Start v1: %v", err)
	}
	runtimetest.WaitEvent(t, rt, "v.0", time.Minute)
	// The server now has another version; the pinned spec gets it.
	server.Add(name, trapModule)
	sum := sha256.Sum256(trapModule)
	if err := rt.Start(ctx, spec("v.1", url+"#sha256="+hex.EncodeToString(sum[:]), 0)); err != nil {
		t.Fatalf("Start v2: %v", err)
	}
	if ev := runtimetest.WaitEvent(t, rt, "v.1", time.Minute); ev.Status != wire.StatusFailed || !strings.Contains(ev.Detail, "unreachable") {
		t.Fatalf("v2 event %+v, want the trapping version", ev)
	}
	if got := server.Requests(name); got != 2 {
		t.Errorf("%d requests, want 2", got)
	}
}

// TestConcurrentStarts: instances of one module started at once download
// and compile it once.
func TestConcurrentStarts(t *testing.T) {
	rt := newRuntime(t)
	name, url := serveApp(t)
	ctx := testCtx(t)
	const n = 4
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- rt.Start(ctx, spec(fmt.Sprintf("c.%d", i), url, 32)) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("Start: %v", err)
		}
	}
	for range n {
		select {
		case ev := <-rt.Events():
			if ev.Status != wire.StatusCompleted {
				t.Errorf("event %+v", ev)
			}
		case <-time.After(time.Minute):
			t.Fatal("no event")
		}
	}
	if server.Requests(name) != 1 || rt.Compilations() != 1 {
		t.Errorf("%d requests, %d compilations; want 1 and 1", server.Requests(name), rt.Compilations())
	}
}

// TestCloseLeavesModules: Close leaves sandboxes running and closes
// Events; a new runtime adopts them and reports their end.
func TestCloseLeavesModules(t *testing.T) {
	cfg := wasm.Config{StateDir: t.TempDir(), Policy: testPolicy()}
	rt, err := wasm.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAll(t, cfg) })
	_, url := serveApp(t)
	s := spec("s.0", url, 0, "sleep", "3")
	if err := rt.Start(testCtx(t), s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	pid := rt.Pid(s.Key)
	t0 := time.Now()
	if err := rt.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if st, ok := <-rt.Events(); ok {
		t.Errorf("event after Close: %+v", st)
	}
	if err := rt.Start(testCtx(t), spec("s.1", url, 0)); err == nil {
		t.Error("Start after Close succeeded")
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the sandbox %d after Close: %v, want it running", pid, err)
	}
	rt2 := openRuntime(t, cfg)
	st, ok := runtimetest.Find(t, rt2, s.Key)
	if !ok || st.Status != wire.StatusRunning || rt2.Pid(s.Key) != pid {
		t.Fatalf("adopted: %+v (found %v), pid %d; want RUNNING as pid %d", st, ok, rt2.Pid(s.Key), pid)
	}
	ev := runtimetest.WaitEvent(t, rt2, s.Key, 30*time.Second)
	if ev.Status != wire.StatusCompleted {
		t.Fatalf("the adopted module ended as %+v, want COMPLETED", ev)
	}
	logs, _ := rt2.Logs(testCtx(t), s.Key, 1<<20)
	if !strings.Contains(logs, "slept") {
		t.Errorf("logs of the adopted module lack its end:\n%s", logs)
	}
}

// TestRuntimeOnFirstStart: a runtime that ran nothing made no wazero runtime
// (its compilation cache on disk is the sign) and closes; the first Start
// makes it.
func TestRuntimeOnFirstStart(t *testing.T) {
	dir := t.TempDir()
	rt := newRuntime(t, func(c *wasm.Config) { c.StateDir = dir })
	compiled := filepath.Join(dir, "wasm", "cache", "compiled")
	if sts, err := rt.List(testCtx(t)); err != nil || len(sts) != 0 {
		t.Fatalf("List = %v, %v", sts, err)
	}
	if _, err := os.Stat(compiled); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("before any Start, %s: %v (want no such directory: no wazero runtime yet)", compiled, err)
	}
	_, url := serveApp(t)
	if err := rt.Start(testCtx(t), spec("first.0", url, 0)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if st := runtimetest.WaitEvent(t, rt, "first.0", time.Minute); st.Status != wire.StatusCompleted {
		t.Fatalf("first.0: %+v", st)
	}
	if _, err := os.Stat(compiled); err != nil {
		t.Errorf("after the first Start: %v", err)
	}
}

// TestCPULimit: a busy-looping module gets its SLA's CPU share and no
// more, as the kernel accounts it in its cgroup, and Usage says so.
func TestCPULimit(t *testing.T) {
	rt := newRuntime(t)
	_, url := serveApp(t)
	ctx := testCtx(t)
	s := spec("spin.0", url, 64, "spin", "30")
	s.Resources.MilliCPU = 200
	if err := rt.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	runtimetest.WaitLog(t, rt, s.Key, "spinning 30 s", 30*time.Second)
	host, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	g := host.Open(rt.CgroupPath(s.Key))
	if !g.Has(rt.Pid(s.Key)) {
		t.Fatalf("the sandbox %d is not in its cgroup %s", rt.Pid(s.Key), g.Path())
	}
	if _, err := rt.Usage(ctx, s.Key); err != nil {
		t.Fatalf("Usage: %v", err)
	}
	s0, err := g.Stat()
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	const window = 3 * time.Second
	time.Sleep(window)
	s1, err := g.Stat()
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	u, err := rt.Usage(ctx, s.Key)
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	used := s1.CPU - s0.CPU
	t.Logf("CPU used in %v under 200 millicores: %v; Usage %+v", window, used, u)
	// A fifth of a core, plus a margin of one CFS period.
	if quota := window / 5; used > quota+100*time.Millisecond || used < quota/2 {
		t.Errorf("the busy module used %v of CPU in %v; want about %v (its quota)", used, window, quota)
	}
	if u.CPUPercent < 10 || u.CPUPercent > 25 {
		t.Errorf("Usage.CPUPercent = %.1f, want about 20", u.CPUPercent)
	}
	if u.MemoryMB <= 0 {
		t.Errorf("Usage.MemoryMB = %d", u.MemoryMB)
	}
	if err := rt.Remove(ctx, s.Key); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if procs, _ := g.Procs(); len(procs) != 0 {
		t.Errorf("processes left in the cgroup after Remove: %v", procs)
	}
}

// TestSandboxProcess: the sandbox sees nothing of the engine's
// environment, and neither its argv nor its environment hold the
// instance's (which may be secret); its limits are the SLA's.
func TestSandboxProcess(t *testing.T) {
	t.Setenv("THICKET_ENGINE_SECRET", "engine-secret")
	rt := newRuntime(t)
	_, url := serveApp(t)
	ctx := testCtx(t)
	s := spec("env.0", url, 48, "sleep", "30")
	s.Environment = []string{"GREETING=instance-secret"}
	s.Resources.MilliCPU = 1500
	if err := rt.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	runtimetest.WaitLog(t, rt, s.Key, `GREETING="instance-secret"`, 30*time.Second)
	pid := rt.Pid(s.Key)
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) != 2 || args[1] != wasm.ChildCommand {
		t.Errorf("sandbox argv = %q, want [<exe> %s]", args, wasm.ChildCommand)
	}
	if env := strings.ReplaceAll(string(environ), "\x00", " "); env != "GOMAXPROCS=2 " {
		t.Errorf("sandbox environment = %q, want only GOMAXPROCS=2", env)
	}
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("sandbox session = %d, %v; want its own (%d)", sid, err, pid)
	}
	host, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"cpu.max": "150000 100000", "memory.max": fmt.Sprint((48 + wasm.SandboxOverheadMB) << 20), "pids.max": "64"}
	if !host.V2() {
		files = map[string]string{"cpu/cpu.cfs_quota_us": "150000", "memory/memory.limit_in_bytes": fmt.Sprint((48 + wasm.SandboxOverheadMB) << 20), "pids/pids.max": "64"}
	}
	for f, want := range files {
		p := filepath.Join("/sys/fs/cgroup", filepath.Dir(f), rt.CgroupPath(s.Key), filepath.Base(f))
		if got, err := os.ReadFile(p); err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("%s = %q, %v; want %s", p, got, err, want)
		}
	}
}

// TestCacheGC: under a budget, the collector removes the least recently
// used cached module that no instance holds, never one in use; a removed
// module is downloaded again when needed.
func TestCacheGC(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	usedName, usedURL := serveApp(t)
	oldName := fmt.Sprintf("old%d.wasm", nameSeq.Add(1))
	oldURL := server.Add(oldName, returnModule)
	if err := rt.Start(ctx, spec("used.0", usedURL, 64, "sleep", "60")); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := rt.Start(ctx, spec("old.0", oldURL, 0)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	runtimetest.WaitEvent(t, rt, "old.0", time.Minute)
	if err := rt.Remove(ctx, "old.0"); err != nil {
		t.Fatal(err)
	}
	// Both modules were used long ago: only the one no instance holds goes.
	cache := filepath.Join(rt.Config().StateDir, "wasm", "cache", "modules")
	files, _ := filepath.Glob(filepath.Join(cache, "*.wasm"))
	if len(files) != 2 {
		t.Fatalf("cached modules %v, want 2", files)
	}
	long := time.Now().Add(-2 * time.Hour)
	for _, f := range files {
		if err := os.Chtimes(f, long, long); err != nil {
			t.Fatal(err)
		}
	}
	c := diskgc.Collector{Budget: 1, Stores: []diskgc.Store{rt.Cache()}}
	res, err := c.Collect(ctx)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	var removed []string
	for _, it := range res.Removed {
		removed = append(removed, it.ID)
	}
	t.Logf("cache of %d bytes; removed %v (%d bytes)", res.Total, removed, res.Freed)
	if len(removed) != 1 || !strings.HasPrefix(removed[0], "module/") || res.Freed != int64(len(returnModule)) {
		t.Fatalf("removed %v (%d bytes), want the unused module only (%d bytes; compiled code used just now stays)", removed, res.Freed, len(returnModule))
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "*.wasm")); len(left) != 1 {
		t.Errorf("cached modules after Collect: %v, want the one in use", left)
	}
	// The module in use still restarts from the cache; the removed one is
	// downloaded again.
	if err := rt.Start(ctx, spec("old.1", oldURL, 0)); err != nil {
		t.Fatalf("Start after Collect: %v", err)
	}
	if ev := runtimetest.WaitEvent(t, rt, "old.1", time.Minute); ev.Status != wire.StatusCompleted {
		t.Fatalf("old.1: %+v", ev)
	}
	if got := server.Requests(oldName); got != 2 {
		t.Errorf("%d requests for the collected module, want 2", got)
	}
	if got := server.Requests(usedName); got != 1 {
		t.Errorf("%d requests for the module in use, want 1", got)
	}
}

// TestSandboxKilledForMemory: a sandbox that needs more than its cgroup's
// memory (here: a sandbox allowance too small for its own runtime) is
// killed by the kernel, and the error says so with the limit.
func TestSandboxKilledForMemory(t *testing.T) {
	rt := newRuntime(t, func(c *wasm.Config) { c.OverheadMB = 1 })
	_, url := serveApp(t)
	err := rt.Start(testCtx(t), spec("oom.0", url, 4, "sleep", "30"))
	if err == nil {
		t.Fatal("a sandbox limited to 5 MiB started")
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), "out of memory: killed by the kernel at the sandbox's memory limit of 5 MiB") {
		t.Errorf("error %q does not say that the kernel killed it at its memory limit", err)
	}
	if states, _ := rt.List(testCtx(t)); len(states) != 0 {
		t.Errorf("a failed Start left %+v", states)
	}
}
