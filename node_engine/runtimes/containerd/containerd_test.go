package containerd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/logwriter"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
	ctrd "github.com/thicket-edge/thicket/node_engine/runtimes/containerd"
	"github.com/thicket-edge/thicket/node_engine/runtimes/runtimetest"
	"github.com/thicket-edge/thicket/node_engine/testimage"
)

// Tests run against the real containerd (as root) in their own namespace;
// each test uses its own node name so that they never see each other's
// containers.
const testNamespace = "thicket-test"

var (
	registry *testimage.Registry
	imageRef string
	nodeSeq  atomic.Int64
)

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == logwriter.Arg { // the shim runs this binary as log writer
		if err := logwriter.Run(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var err error
		registry, err = testimage.StartRegistry("")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer registry.Close()
		imageRef, err = registry.PushTestApp(ctx, "testapp", "v1")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer deleteImages(registry.Addr)
		return m.Run()
	}()
	os.Exit(code)
}

// deleteImages removes the images this run pulled from containerd.
func deleteImages(registryAddr string) {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), testNamespace), time.Minute)
	defer cancel()
	c, err := containerd.New(ctrd.DefaultAddress, containerd.WithTimeout(5*time.Second))
	if err != nil {
		return
	}
	defer c.Close()
	imgs, err := c.ImageService().List(ctx)
	if err != nil {
		return
	}
	for _, img := range imgs {
		if strings.HasPrefix(img.Name, registryAddr+"/") {
			_ = c.ImageService().Delete(ctx, img.Name, images.SynchronousDelete())
		}
	}
}

// newRuntime returns a runtime for a fresh node name; everything it holds
// is removed when the test ends.
func newRuntime(t *testing.T, mod ...func(*ctrd.Config)) *ctrd.Runtime {
	t.Helper()
	cfg := ctrd.Config{
		Namespace:          testNamespace,
		NodeName:           fmt.Sprintf("t%d-n%d", os.Getpid(), nodeSeq.Add(1)),
		StateDir:           t.TempDir(),
		InsecureRegistries: []string{registry.Addr},
		StopGrace:          5 * time.Second,
	}
	for _, f := range mod {
		f(&cfg)
	}
	return openRuntime(t, cfg)
}

// openRuntime opens a runtime with cfg, failing the test if containerd is
// not reachable, and cleans up the node's instances when the test ends.
func openRuntime(t *testing.T, cfg ctrd.Config) *ctrd.Runtime {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt, err := ctrd.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("containerd runtime: %v", err)
	}
	if err := rt.Available(ctx); err != nil {
		rt.Close()
		t.Fatalf("containerd is required for these tests (run as root; start it with `containerd &`): %v", err)
	}
	t.Cleanup(func() {
		rt.Close()
		removeAll(t, cfg)
	})
	return rt
}

// removeAll removes every instance of cfg's node, through a runtime of its
// own (the test may have closed its own).
func removeAll(t *testing.T, cfg ctrd.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rt, err := ctrd.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer rt.Close()
	states, err := rt.List(ctx)
	if err != nil {
		t.Errorf("cleanup: list: %v", err)
	}
	for _, st := range states {
		if err := rt.Remove(ctx, st.Key); err != nil {
			t.Errorf("cleanup: remove %s: %v", st.Key, err)
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// spec is an instance of the test image serving on port.
func spec(key string, port int, cmd ...string) wire.InstanceSpec {
	svc, n, err := wire.ParseInstanceKey(key)
	if err != nil {
		panic(err)
	}
	return wire.InstanceSpec{
		Key:              key,
		ServiceID:        svc,
		InstanceNumber:   n,
		ApplicationName:  "app",
		MicroserviceName: "testapp",
		Virtualization:   "container",
		Code:             imageRef,
		Cmd:              cmd,
		Environment:      []string{fmt.Sprintf("PORT=%d", port)},
		Resources:        wire.Resources{MilliCPU: 500, MemoryMB: 64},
	}
}

// httpGet polls url until it answers 200 and returns the body.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body)
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return ""
}

// logText is the text of a log's records, one line each.
func logText(logs string) string {
	var b strings.Builder
	for _, l := range wire.ParseLog(logs) {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

// waitLogs waits until the instance's output holds want n times: the shim
// copies the output to the log file asynchronously.
func waitLogs(t *testing.T, rt runtimes.Runtime, key, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		logs, err := rt.Logs(testCtx(t), key, 1<<20)
		if err != nil {
			t.Fatalf("Logs(%s): %v", key, err)
		}
		if strings.Count(logs, want) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of %s hold %q %d times, want %d:\n%s", key, want, strings.Count(logs, want), n, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func nsCtx(t *testing.T) context.Context {
	return namespaces.WithNamespace(testCtx(t), testNamespace)
}

func TestLifecycle(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	port := testharness.FreePort(t)
	s := spec("web.0", port)

	t0 := time.Now()
	if err := rt.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("first start (pull included) took %v", time.Since(t0))

	st, ok := runtimetest.Find(t, rt, s.Key)
	if !ok {
		t.Fatalf("List does not show %s", s.Key)
	}
	if st.Status != wire.StatusRunning {
		t.Fatalf("status = %s (%s), want RUNNING", st.Status, st.Detail)
	}
	if st.Spec.Code != s.Code || st.Spec.Key != s.Key || st.Spec.Environment[0] != s.Environment[0] || st.Spec.Resources != s.Resources {
		t.Fatalf("List spec = %+v, want %+v", st.Spec, s)
	}
	if st.StartedAt.IsZero() || time.Since(st.StartedAt) > time.Minute {
		t.Errorf("StartedAt = %v", st.StartedAt)
	}

	// Start again is a no-op on a running instance.
	if err := rt.Start(ctx, s); err != nil {
		t.Fatalf("second Start: %v", err)
	}

	body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	if want := "hello from web-0\n"; body != want {
		t.Errorf("GET = %q, want %q (host name from the key)", body, want)
	}
	waitLogs(t, rt, s.Key, "GET / from 127.0.0.1:", 1)
	if tail, err := rt.Logs(ctx, s.Key, 10); err != nil || len(tail) > 10 {
		t.Errorf("Logs(10) = %q, %v", tail, err)
	}

	// The limits are in the container's OCI spec.
	id := ctrd.ContainerID(rt.Config().NodeName, s.Key)
	c, err := rt.Client().LoadContainer(nsCtx(t), id)
	if err != nil {
		t.Fatalf("load container: %v", err)
	}
	ociSpec, err := c.Spec(nsCtx(t))
	if err != nil {
		t.Fatalf("container spec: %v", err)
	}
	res := ociSpec.Linux.Resources
	if res == nil || res.Memory == nil || res.Memory.Limit == nil || *res.Memory.Limit != 64<<20 {
		t.Errorf("memory limit not 64 MiB: %+v", res)
	}
	if res == nil || res.CPU == nil || res.CPU.Quota == nil || *res.CPU.Quota != 50_000 || *res.CPU.Period != 100_000 {
		t.Errorf("CPU quota not 50ms/100ms: %+v", res.CPU)
	}
	if got := ociSpec.Process.Args; len(got) != 1 || got[0] != testimage.AppPath {
		t.Errorf("args = %q, want the image's entrypoint", got)
	}
	labels, _ := c.Labels(nsCtx(t))
	if labels[ctrd.LabelNode] != rt.Config().NodeName || labels[ctrd.LabelInstance] != s.Key || labels[ctrd.LabelService] != "web" {
		t.Errorf("labels = %v", labels)
	}

	// Remove leaves nothing behind and sends no event.
	if err := rt.Remove(ctx, s.Key); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	assertGone(t, rt, id)
	if _, ok := runtimetest.Find(t, rt, s.Key); ok {
		t.Errorf("List still shows %s", s.Key)
	}
	runtimetest.NoEvent(t, rt, 500*time.Millisecond)
	if err := rt.Remove(ctx, s.Key); err != nil {
		t.Errorf("Remove of an unknown key: %v", err)
	}
	if _, err := rt.Logs(ctx, s.Key, 100); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("Logs of a removed instance: %v, want ErrNotFound", err)
	}
}

// assertGone checks with the client that container id has no container,
// task, snapshot or log file left.
func assertGone(t *testing.T, rt *ctrd.Runtime, id string) {
	t.Helper()
	ctx := nsCtx(t)
	cl := rt.Client()
	if _, err := cl.LoadContainer(ctx, id); !errdefs.IsNotFound(err) {
		t.Errorf("container %s: %v, want not found", id, err)
	}
	if _, err := cl.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: id}); !errdefs.IsNotFound(errdefs.FromGRPC(err)) {
		t.Errorf("task %s: %v, want not found", id, err)
	}
	if _, err := cl.SnapshotService(containerd.DefaultSnapshotter).Stat(ctx, id); !errdefs.IsNotFound(err) {
		t.Errorf("snapshot %s: %v, want not found", id, err)
	}
	logFile := filepath.Join(rt.Config().StateDir, "logs", id+".log")
	if _, err := os.Stat(logFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log file %s: %v, want none", logFile, err)
	}
}

func TestExitCodes(t *testing.T) {
	rt := newRuntime(t)
	for _, tc := range []struct {
		name   string
		cmd    []string
		status string
		code   int
	}{
		{"exit3", []string{"exit", "3"}, wire.StatusFailed, 3},
		{"exit0", []string{"exit", "0"}, wire.StatusCompleted, 0},
		{"print", []string{"print", "5"}, wire.StatusCompleted, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			s := spec(tc.name+".1", testharness.FreePort(t), tc.cmd...)
			if err := rt.Start(ctx, s); err != nil {
				t.Fatalf("Start: %v", err)
			}
			ev := runtimetest.WaitEvent(t, rt, s.Key, time.Minute)
			if ev.Status != tc.status || ev.ExitCode != tc.code {
				t.Fatalf("event = %s code %d (%s), want %s code %d", ev.Status, ev.ExitCode, ev.Detail, tc.status, tc.code)
			}
			if ev.Spec.Key != s.Key || ev.ExitedAt.IsZero() || ev.StartedAt.IsZero() {
				t.Errorf("event lacks spec or times: %+v", ev)
			}
			if want := fmt.Sprintf("exited with code %d", tc.code); ev.Detail != want {
				t.Errorf("detail = %q, want %q", ev.Detail, want)
			}
			st, ok := runtimetest.Find(t, rt, s.Key)
			if !ok || st.Status != tc.status || st.ExitCode != tc.code || st.ExitedAt.IsZero() {
				t.Errorf("List = %+v, want %s code %d", st, tc.status, tc.code)
			}

			// Start on the exited instance runs it again; its log is kept.
			if err := rt.Start(ctx, s); err != nil {
				t.Fatalf("restart: %v", err)
			}
			if ev := runtimetest.WaitEvent(t, rt, s.Key, time.Minute); ev.ExitCode != tc.code {
				t.Errorf("restart exit code = %d, want %d", ev.ExitCode, tc.code)
			}
			// The log is appended to on restart.
			if tc.name == "print" {
				waitLogs(t, rt, s.Key, "line 5\n", 2)
			} else {
				waitLogs(t, rt, s.Key, "exiting with code", 2)
			}
			if err := rt.Remove(ctx, s.Key); err != nil {
				t.Fatal(err)
			}
			assertGone(t, rt, ctrd.ContainerID(rt.Config().NodeName, s.Key))
		})
	}
}

func TestRestartAfterCrash(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	port := testharness.FreePort(t)
	s := spec("crash.0", port, "crash-after", "1")
	if err := rt.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	ev := runtimetest.WaitEvent(t, rt, s.Key, time.Minute)
	if ev.Status != wire.StatusFailed || ev.ExitCode != 1 {
		t.Fatalf("event = %+v, want FAILED code 1", ev)
	}
	if err := rt.Start(ctx, s); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if st, _ := runtimetest.Find(t, rt, s.Key); st.Status != wire.StatusRunning || !st.StartedAt.After(ev.StartedAt) {
		t.Fatalf("after restart: %+v", st)
	}
	httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	if ev := runtimetest.WaitEvent(t, rt, s.Key, time.Minute); ev.ExitCode != 1 {
		t.Fatalf("second crash: %+v", ev)
	}
}

func TestAdoption(t *testing.T) {
	rt1 := newRuntime(t)
	ctx := testCtx(t)
	port := testharness.FreePort(t)
	s := spec("adopt.2", port)
	s.Labels = map[string]string{"team": "edge"}
	if err := rt1.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	// The first engine goes away; its instance keeps running.
	if err := rt1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port))

	// A restarted engine (same node name) finds it with its spec.
	rt2 := openRuntime(t, rt1.Config())
	st, ok := runtimetest.Find(t, rt2, s.Key)
	if !ok || st.Status != wire.StatusRunning {
		t.Fatalf("adopting runtime: %+v, %v; want RUNNING", st, ok)
	}
	if st.Spec.Labels["team"] != "edge" || st.Spec.Code != s.Code || st.Spec.Port != s.Port {
		t.Errorf("adopted spec = %+v", st.Spec)
	}
	waitLogs(t, rt2, s.Key, "GET / from", 2)

	// Another node sharing the containerd sees none of it.
	other := rt1.Config()
	other.NodeName += "-other"
	other.StateDir = t.TempDir()
	rt3 := openRuntime(t, other)
	if states, err := rt3.List(ctx); err != nil || len(states) != 0 {
		t.Errorf("another node's List = %+v, %v; want empty", states, err)
	}
	if err := rt3.Remove(ctx, s.Key); err != nil {
		t.Errorf("another node's Remove: %v", err)
	}
	if st, _ := runtimetest.Find(t, rt2, s.Key); st.Status != wire.StatusRunning {
		t.Fatalf("another node's Remove touched the instance: %+v", st)
	}

	// The adopting runtime watches the adopted task: an exit is delivered.
	_, err := rt2.Client().TaskService().Kill(nsCtx(t), &tasks.KillRequest{
		ContainerID: ctrd.ContainerID(rt2.Config().NodeName, s.Key),
		Signal:      uint32(syscall.SIGTERM),
	})
	if err != nil {
		t.Fatalf("kill: %v", err)
	}
	ev := runtimetest.WaitEvent(t, rt2, s.Key, time.Minute)
	if ev.Status != wire.StatusCompleted || ev.Spec.Labels["team"] != "edge" {
		t.Fatalf("event = %+v, want COMPLETED with the spec", ev)
	}
}

func TestPullFailure(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	s := spec("nope.0", testharness.FreePort(t))
	s.Code = registry.Addr + "/does-not-exist:v1"
	err := rt.Start(ctx, s)
	if err == nil {
		t.Fatal("Start of an unknown image succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "pull "+s.Code) || !strings.Contains(msg, "not found") {
		t.Errorf("error = %q, want it to name the pull and say not found", msg)
	}
	if states, err := rt.List(ctx); err != nil || len(states) != 0 {
		t.Errorf("List after a failed pull = %+v, %v", states, err)
	}

	s.Code = "Bad Reference!"
	if err := rt.Start(ctx, s); err == nil || !strings.Contains(err.Error(), "Bad Reference!") {
		t.Errorf("bad reference: %v", err)
	}
}

func TestStartFailureIsListed(t *testing.T) {
	// A network namespace that does not exist makes runc fail to create the
	// task after the container was created.
	rt := newRuntime(t, func(c *ctrd.Config) { c.NetNS = "/nonexistent/netns" })
	ctx := testCtx(t)
	s := spec("badnet.0", testharness.FreePort(t))
	if err := rt.Start(ctx, s); err == nil {
		t.Fatal("Start with a missing network namespace succeeded")
	}
	st, ok := runtimetest.Find(t, rt, s.Key)
	if !ok || st.Status != wire.StatusFailed || !strings.Contains(st.Detail, "/nonexistent/netns") || st.Spec.Key != s.Key {
		t.Fatalf("List after a failed start = %+v, %v; want FAILED with the error", st, ok)
	}
	if err := rt.Remove(ctx, s.Key); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	assertGone(t, rt, ctrd.ContainerID(rt.Config().NodeName, s.Key))
}

func TestSpecChangeReplaces(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	port := testharness.FreePort(t)
	s := spec("change.0", port)
	s.Environment = append(s.Environment, "INSTANCE=first")
	if err := rt.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); body != "hello from first\n" {
		t.Fatalf("GET = %q", body)
	}
	s.Environment[1] = "INSTANCE=second"
	if err := rt.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); body != "hello from second\n" {
		t.Fatalf("GET after spec change = %q", body)
	}
	st, _ := runtimetest.Find(t, rt, s.Key)
	if st.Status != wire.StatusRunning || st.Spec.Environment[1] != "INSTANCE=second" {
		t.Fatalf("List = %+v", st)
	}
	runtimetest.NoEvent(t, rt, 300*time.Millisecond)
}

func TestStopGraceKills(t *testing.T) {
	rt := newRuntime(t, func(c *ctrd.Config) { c.StopGrace = time.Second })
	ctx := testCtx(t)
	port := testharness.FreePort(t)
	s := spec("stubborn.0", port)
	s.Environment = append(s.Environment, "IGNORE_SIGTERM=1")
	if err := rt.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	t0 := time.Now()
	if err := rt.Remove(ctx, s.Key); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if d := time.Since(t0); d < time.Second {
		t.Errorf("Remove took %v, want at least the 1s grace", d)
	}
	assertGone(t, rt, ctrd.ContainerID(rt.Config().NodeName, s.Key))
}

func TestCachedImageNeedsNoRegistry(t *testing.T) {
	reg, err := testimage.StartRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ctx := testCtx(t)
	ref, err := reg.PushTestApp(ctx, "cached", "v1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteImages(reg.Addr) })
	rt := newRuntime(t, func(c *ctrd.Config) { c.InsecureRegistries = []string{reg.Addr} })
	s := spec("cached.0", testharness.FreePort(t), "exit", "0")
	s.Code = ref
	if err := rt.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	runtimetest.WaitEvent(t, rt, s.Key, time.Minute)
	if err := rt.Remove(ctx, s.Key); err != nil {
		t.Fatal(err)
	}
	reg.Close()
	t0 := time.Now()
	if err := rt.Start(ctx, s); err != nil {
		t.Fatalf("Start from the cached image with the registry gone: %v", err)
	}
	t.Logf("start from cache took %v", time.Since(t0))
	runtimetest.WaitEvent(t, rt, s.Key, time.Minute)
}

func TestUnavailable(t *testing.T) {
	ctx := testCtx(t)
	rt, err := ctrd.New(ctx, ctrd.Config{
		Address:  filepath.Join(t.TempDir(), "no.sock"),
		NodeName: "nobody",
		StateDir: t.TempDir(),
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New must not need containerd up: %v", err)
	}
	defer rt.Close()
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rt.Available(actx); err == nil {
		t.Fatal("Available with no containerd")
	}
	reg := runtimes.NewRegistry(rt)
	if got := reg.Available(actx); len(got) != 0 {
		t.Errorf("registry advertises %v with containerd down", got)
	}
}

// Instances started together from an image not yet pulled share one pull.
func TestConcurrentStarts(t *testing.T) {
	ctx := testCtx(t)
	ref, err := registry.PushTestApp(ctx, "concurrent", "v1")
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t)
	const n = 4
	errs := make(chan error, n)
	for i := range n {
		go func() {
			s := spec(fmt.Sprintf("many.%d", i), testharness.FreePort(t))
			s.Code = ref
			errs <- rt.Start(ctx, s)
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Start: %v", err)
		}
	}
	states, err := rt.List(ctx)
	if err != nil || len(states) != n {
		t.Fatalf("List = %d states, %v; want %d", len(states), err, n)
	}
	for _, st := range states {
		if st.Status != wire.StatusRunning {
			t.Errorf("%s: %s %s", st.Key, st.Status, st.Detail)
		}
	}
}
