package containerd_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/namespaces"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
	ctrd "github.com/thicket-edge/thicket/node_engine/runtimes/containerd"
	"github.com/thicket-edge/thicket/node_engine/runtimes/runtimetest"
)

// privateContainerd runs a containerd of the test's own (own socket, root
// and state), so that the test may kill and restart it without disturbing
// the machine's.
type privateContainerd struct {
	dir, sock string
	proc      *testharness.Proc
	t         *testing.T
}

func newPrivateContainerd(t *testing.T) *privateContainerd {
	t.Helper()
	bin, err := exec.LookPath("containerd")
	if err != nil {
		t.Fatalf("containerd binary required (apt-get install containerd runc): %v", err)
	}
	dir, err := os.MkdirTemp("", "thicket-ctd-")
	if err != nil {
		t.Fatal(err)
	}
	p := &privateContainerd{dir: dir, sock: filepath.Join(dir, "containerd.sock"), t: t}
	cfg := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), p.sock, p.sock+".ttrpc", filepath.Join(dir, "opt"))
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.start(bin)
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		// The shims' mounts are gone once their tasks are deleted.
		_ = exec.Command("umount", "-R", filepath.Join(dir, "state")).Run()
		_ = os.RemoveAll(dir)
	})
	return p
}

func (p *privateContainerd) start(bin string) {
	p.t.Helper()
	if p.proc == nil {
		p.proc = &testharness.Proc{Name: "containerd", Args: []string{bin, "--config", filepath.Join(p.dir, "config.toml")},
			LogFile: filepath.Join(p.dir, "containerd.log")}
	}
	if err := p.proc.Start(); err != nil {
		p.t.Fatal(err)
	}
	if err := p.proc.WaitUntil(context.Background(), 30*time.Second, "answering", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := containerd.New(p.sock, containerd.WithTimeout(time.Second))
		if err == nil {
			_, err = c.Version(ctx)
			c.Close()
		}
		return err == nil
	}); err != nil {
		p.t.Fatalf("private containerd did not come up: %v", err)
	}
}

// stop ends containerd: SIGKILL as a crash would, else gracefully.
func (p *privateContainerd) stop(sig syscall.Signal) {
	if sig == syscall.SIGKILL {
		p.proc.Kill()
	} else {
		p.proc.Stop()
	}
}

// A containerd crash and restart neither stops the instance nor loses its
// exit: the watcher reconnects and still delivers it.
func TestContainerdRestart(t *testing.T) {
	ctd := newPrivateContainerd(t)
	bin, _ := exec.LookPath("containerd")
	rt := newRuntime(t, func(c *ctrd.Config) { c.Address = ctd.sock })
	ctx := testCtx(t)
	port := testharness.FreePort(t)
	s := spec("survivor.0", port)
	if err := rt.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	httpGet(t, url)

	ctd.stop(syscall.SIGKILL)
	httpGet(t, url) // the workload outlives containerd
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	if err := rt.Available(actx); err == nil {
		t.Error("Available while containerd is down")
	}
	cancel()
	if _, err := rt.List(ctx); err == nil {
		t.Error("List while containerd is down")
	}
	ctd.start(bin)

	// The runtime's connection comes back by itself.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, ok := findStateErr(ctx, rt, s.Key)
		if ok && st.Status == wire.StatusRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after containerd restart: %+v, %v", st, ok)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, err := rt.Client().TaskService().Kill(namespaces.WithNamespace(ctx, testNamespace), &tasks.KillRequest{
		ContainerID: ctrd.ContainerID(rt.Config().NodeName, s.Key),
		Signal:      uint32(syscall.SIGTERM),
	})
	if err != nil {
		t.Fatalf("kill: %v", err)
	}
	if ev := runtimetest.WaitEvent(t, rt, s.Key, time.Minute); ev.Status != wire.StatusCompleted {
		t.Fatalf("event after containerd restart = %+v", ev)
	}
	waitLogs(t, rt, s.Key, "terminating on terminated", 1)
}

// findStateErr is findState that tolerates List errors (containerd down).
func findStateErr(ctx context.Context, rt *ctrd.Runtime, key string) (runtimes.State, bool) {
	states, err := rt.List(ctx)
	if err != nil {
		return runtimes.State{}, false
	}
	for _, st := range states {
		if st.Key == key {
			return st, true
		}
	}
	return runtimes.State{}, false
}
