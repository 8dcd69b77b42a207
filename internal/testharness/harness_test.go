package testharness

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/node_engine/testimage"
)

// shell is a Proc running a shell script.
func shell(name, script string) *Proc {
	return &Proc{Name: name, Args: []string{"sh", "-c", script}}
}

func TestProcStopStartKill(t *testing.T) {
	p := shell("loop", `echo ready; trap 'echo bye; exit 0' TERM; while :; do sleep 0.05; done`)
	MustStart(t, p)
	ctx := context.Background()
	if err := p.WaitOutput(ctx, 10*time.Second, "ready"); err != nil {
		t.Fatal(err)
	}
	if !p.Running() || p.PID() == 0 {
		t.Fatalf("running %v, pid %d after the start", p.Running(), p.PID())
	}
	if err := p.Start(); err == nil {
		t.Error("a second Start of a running process succeeded")
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if p.Running() || p.PID() != 0 || !strings.Contains(p.Output(), "bye") {
		t.Fatalf("after Stop: running %v, pid %d, output %q", p.Running(), p.PID(), p.Output())
	}
	// Started again with the same command line: the output goes on, and
	// WaitOutput sees only the new start's.
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOutput(ctx, 10*time.Second, "ready"); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOutput(ctx, 200*time.Millisecond, "bye"); err == nil {
		t.Error("WaitOutput found the output of the previous start")
	}
	if got := strings.Count(p.Output(), "ready"); got != 2 {
		t.Errorf("output after two starts has %d ready lines: %q", got, p.Output())
	}
	p.Kill()
	select {
	case <-p.Exited():
	default:
		t.Fatal("Exited not closed after Kill")
	}
	if strings.Count(p.Output(), "bye") != 1 {
		t.Errorf("a killed process ran its SIGTERM trap: %q", p.Output())
	}
}

func TestProcStopKillsAfterTimeout(t *testing.T) {
	p := shell("stubborn", `trap '' TERM; echo ready; while :; do sleep 0.05; done`)
	p.StopTimeout = 300 * time.Millisecond
	MustStart(t, p)
	if err := p.WaitOutput(context.Background(), 10*time.Second, "ready"); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err == nil || !strings.Contains(err.Error(), "did not stop") {
		t.Errorf("Stop of a process ignoring SIGTERM: %v", err)
	}
	if p.Running() {
		t.Error("still running after Stop")
	}
}

func TestWaitUntilExit(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		portTaken    bool
	}{
		{"port taken", `echo "listen tcp 127.0.0.1:1: bind: address already in use"; exit 1`, true},
		{"other failure", `echo "no such flag"; exit 3`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := MustStart(t, shell(tc.name, tc.script))
			err := p.WaitUntil(context.Background(), 10*time.Second, "ready", func() bool { return false })
			if err == nil {
				t.Fatal("WaitUntil succeeded on an exited process")
			}
			if errors.Is(err, ErrPortTaken) != tc.portTaken {
				t.Errorf("ErrPortTaken %v, want %v: %v", errors.Is(err, ErrPortTaken), tc.portTaken, err)
			}
			if !tc.portTaken && !strings.Contains(err.Error(), "no such flag") {
				t.Errorf("error without the output: %v", err)
			}
		})
	}
	p := MustStart(t, shell("slow", `exec sleep 10`))
	if err := p.WaitUntil(context.Background(), 200*time.Millisecond, "ready", func() bool { return false }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitUntil past its timeout: %v", err)
	}
}

func TestProcEnvironmentAndLogFile(t *testing.T) {
	t.Setenv("THICKET_LEAK", "from the caller")
	log := filepath.Join(t.TempDir(), "env.log")
	p := MustStart(t, &Proc{Name: "env", Args: []string{"sh", "-c", `echo "[$THICKET_LEAK][$MINE]"`}, Env: []string{"MINE=given"}, LogFile: log})
	<-p.Exited()
	if got := strings.TrimSpace(p.Output()); got != "[][given]" {
		t.Errorf("output %q, want [][given]", got)
	}
	if b, err := os.ReadFile(log); err != nil || strings.TrimSpace(string(b)) != "[][given]" {
		t.Errorf("log file: %q %v", b, err)
	}
}

func TestPort(t *testing.T) {
	p := FreePort(t)
	l, err := net.Listen("tcp", "0.0.0.0:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("port %d is not free: %v", p, err)
	}
	l.Close()
}

func TestFindRepo(t *testing.T) {
	repo, err := FindRepo("")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Dir(filepath.Dir(wd)); repo != want {
		t.Errorf("repository %s, want %s", repo, want)
	}
	if got, err := FindRepo("."); err != nil || got != wd {
		t.Errorf("FindRepo(.) = %s %v, want %s", got, err, wd)
	}
}

// TestRoot builds thicket-root (once however often asked) and starts,
// kills and starts it again on its data dir and port.
func TestRoot(t *testing.T) {
	b, err := TempBin()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Remove() })
	ctx := context.Background()
	if err := b.Build(ctx, RootProgram); err != nil {
		t.Fatal(err)
	}
	built, err := os.Stat(b.Path(RootProgram))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Build(ctx, RootProgram); err != nil {
		t.Fatal(err)
	}
	if again, err := os.Stat(b.Path(RootProgram)); err != nil || !again.ModTime().Equal(built.ModTime()) {
		t.Errorf("built twice: %v", err)
	}

	r := b.MustStartRoot(t, RootOptions{})
	if pw, err := r.AdminPassword(); err != nil || len(pw) < 12 {
		t.Errorf("admin password %q %v", pw, err)
	}
	if tok, err := r.ClusterJoinToken(); err != nil || tok == "" {
		t.Errorf("cluster join token %q %v", tok, err)
	}
	url := r.URL
	r.Proc.Kill()
	if r.Healthy(ctx) {
		t.Fatal("healthy after kill -9")
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if r.URL != url || !r.Healthy(ctx) {
		t.Errorf("after the restart: %s (was %s), healthy %v", r.URL, url, r.Healthy(ctx))
	}
}

// TestNetwork makes two hosts on a bridge of its own (apart from the
// suites' and the benchmark's) that reach each other and the bridge. It
// needs root.
func TestNetwork(t *testing.T) {
	c := testNetwork
	c.HostPrefix, c.VethPrefix = "thkht", "thkhtv"
	n := MustNetwork(t, c)
	a, b := n.MustAddHost(t, 2), n.MustAddHost(t, 3)
	if a.Addr != "10.217.0.2" || a.Netns != "thkht-2" || a.Path != "/run/netns/thkht-2" {
		t.Errorf("host %+v", a)
	}
	for _, from := range []Host{a, b} {
		for _, to := range []string{a.Addr, b.Addr, n.Addr} {
			if out, err := exec.Command("ip", "netns", "exec", from.Netns, "ping", "-c", "1", "-W", "2", to).CombinedOutput(); err != nil {
				t.Errorf("%s cannot reach %s: %v\n%s", from.Netns, to, err, out)
			}
		}
	}
	n.Close()
	if _, err := os.Stat(a.Path); err == nil {
		t.Error("host namespace left after Close")
	}
	if exec.Command("ip", "link", "show", "thkht0").Run() == nil {
		t.Error("bridge left after Close")
	}
}

// TestCleanContainerd leaves no namespace behind that held an image and a
// container. It needs root and containerd.
func TestCleanContainerd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg := testimage.Serve(t)
	ref, err := reg.PushTestApp(ctx, "harness/testapp", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if bin, err := testimage.Binary(ctx); err == nil {
		t.Cleanup(func() { os.RemoveAll(filepath.Dir(bin)) })
	}
	const ns = "thicket-harness-test"
	CleanContainerd(ctx, ns) // an interrupted run's
	for _, args := range [][]string{{"images", "pull", "--plain-http", ref}, {"containers", "create", ref, "harness-test"}} {
		if out, err := exec.Command("ctr", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ctr %v: %v\n%s", args, err, out)
		}
	}
	CleanContainerd(ctx, ns)
	out, err := exec.Command("ctr", "namespaces", "ls", "-q").Output()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(strings.Fields(string(out)), ns) {
		left, _ := exec.Command("ctr", "namespaces", "rm", ns).CombinedOutput()
		t.Errorf("namespace %s left: %s", ns, left)
	}
}
