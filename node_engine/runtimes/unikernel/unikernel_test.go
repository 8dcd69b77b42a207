package unikernel_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/logwriter"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
	"github.com/thicket-edge/thicket/node_engine/runtimes/runtimetest"
	"github.com/thicket-edge/thicket/node_engine/runtimes/unikernel"
	"github.com/thicket-edge/thicket/node_engine/testimage"
)

// Every test serves the image from one server, under names of its own when
// it counts downloads.
var (
	server    *testimage.FileServer
	imageData []byte
	imageURL  string
	imageSum  string
	nameSeq   atomic.Int64
)

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == logwriter.Arg { // this binary as the consoles' log writer
		if err := logwriter.Run(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		t0 := time.Now()
		var err error
		server, err = testimage.NewUnikernelServer(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer server.Close()
		imageData = server.File(testimage.UnikernelImageName)
		imageURL = server.URL + "/" + testimage.UnikernelImageName
		sum := sha256.Sum256(imageData)
		imageSum = hex.EncodeToString(sum[:])
		fmt.Fprintf(os.Stderr, "built the unikernel test image (%d bytes) in %v\n", len(imageData), time.Since(t0).Round(time.Millisecond))
		return m.Run()
	}()
	os.Exit(code)
}

// serveImage serves the image under a fresh name and returns its URL.
func serveImage(t *testing.T) (name, url string) {
	t.Helper()
	name = fmt.Sprintf("uk%d.tar.gz", nameSeq.Add(1))
	return name, server.Add(name, imageData)
}

func quietLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newRuntime(t *testing.T, mod ...func(*unikernel.Config)) *unikernel.Runtime {
	t.Helper()
	cfg := unikernel.Config{NodeName: "n1", StateDir: t.TempDir()}
	for _, f := range mod {
		f(&cfg)
	}
	return openRuntime(t, cfg)
}

// testPolicy lets the runtime fetch from 127.0.0.1 without pins: what
// the tests serve.
func testPolicy() *fetch.Policy {
	return &fetch.Policy{AllowUnpinned: true, Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
}

// openRuntime opens a runtime; when the test ends, every instance it holds
// is removed (no virtual machine outlives a test) and it is closed.
func openRuntime(t *testing.T, cfg unikernel.Config) *unikernel.Runtime {
	t.Helper()
	if cfg.Policy == nil {
		// The tests serve images on 127.0.0.1, mostly unpinned.
		cfg.Policy = testPolicy()
	}
	rt, err := unikernel.New(context.Background(), cfg, quietLog())
	if err != nil {
		t.Fatalf("unikernel.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		states, _ := rt.List(ctx)
		for _, st := range states {
			if err := rt.Remove(ctx, st.Key); err != nil {
				t.Errorf("cleanup: Remove %s: %v", st.Key, err)
			}
		}
		if err := rt.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := rt.Available(context.Background()); err != nil {
		t.Fatalf("Available: %v", err)
	}
	if rt.Virtualization() != "unikernel" {
		t.Fatalf("Virtualization = %q", rt.Virtualization())
	}
	return rt
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func spec(key, url string, cmd ...string) wire.InstanceSpec {
	return wire.InstanceSpec{
		Key:              key,
		ServiceID:        strings.Split(key, ".")[0],
		ApplicationName:  "app",
		MicroserviceName: "uk",
		Virtualization:   "unikernel",
		Code:             url,
		Cmd:              cmd,
		Environment:      []string{"GREETING=hi there"},
		Resources:        wire.Resources{MilliCPU: 1000, MemoryMB: 128},
	}
}

func processGone(pid int) bool {
	if pid <= 0 {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

func TestBootWithoutNetwork(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	t.Logf("KVM: %v", rt.KVM())
	key := "svc1.0"
	sp := spec(key, imageURL+"#sha256="+imageSum, "hello-arg")
	t0 := time.Now()
	if err := rt.Start(ctx, sp); err != nil {
		t.Fatalf("Start: %v", err)
	}
	started := time.Since(t0)
	logs := runtimetest.WaitLog(t, rt, key, testimage.UnikernelUp+" no-network", 60*time.Second)
	t.Logf("Start returned in %v; guest up after %v", started.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	for _, want := range []string{testimage.UnikernelBooting, "greeting: hi there", "args: hello-arg"} {
		if !strings.Contains(logs, want) {
			t.Errorf("console lacks %q:\n%s", want, logs)
		}
	}
	if strings.ContainsAny(logs, "\r\x1b") {
		t.Errorf("console has carriage returns or escape sequences")
	}
	for _, l := range wire.ParseLog(logs) { // records, as containers' logs
		if l.Time.IsZero() || l.Stream != wire.StreamStdout {
			t.Errorf("console line %+v: want a time and stream stdout", l)
			break
		}
	}
	if tail, _ := rt.Logs(ctx, key, 100); len(tail) > 100 {
		t.Errorf("Logs(100) returned %d bytes", len(tail))
	}

	st, ok := runtimetest.Find(t, rt, key)
	if !ok || st.Status != wire.StatusRunning || st.Spec.Code != sp.Code || st.StartedAt.IsZero() {
		t.Fatalf("List: %+v (found %v), want RUNNING with the spec", st, ok)
	}
	// Start again with the same spec: nothing happens.
	if err := rt.Start(ctx, sp); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if rt.Downloads() != 1 {
		t.Errorf("downloads = %d, want 1", rt.Downloads())
	}

	u, err := rt.Usage(ctx, key)
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	if u.MemoryMB <= 0 || u.CPUPercent != 0 {
		t.Errorf("first Usage = %+v, want memory and no CPU", u)
	}
	time.Sleep(300 * time.Millisecond)
	u, err = rt.Usage(ctx, key)
	if err != nil || u.CPUPercent < 0 {
		t.Errorf("second Usage = %+v, %v", u, err)
	}
	t.Logf("usage: %+v", u)
	if _, err := rt.Usage(ctx, "nope"); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("Usage of an unknown key: %v, want ErrNotFound", err)
	}
	if _, err := rt.Logs(ctx, "nope", 10); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("Logs of an unknown key: %v, want ErrNotFound", err)
	}

	pid := rt.QemuPid(key)
	if processGone(pid) {
		t.Fatalf("qemu pid %d not running", pid)
	}
	dir := rt.InstanceDir(key)
	t0 = time.Now()
	if err := rt.Remove(ctx, key); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	t.Logf("Remove took %v (guest powered off through the ACPI power button)", time.Since(t0).Round(time.Millisecond))
	if time.Since(t0) > 8*time.Second {
		t.Errorf("Remove took %v: the guest did not power off on the power button", time.Since(t0))
	}
	if !processGone(pid) {
		t.Errorf("qemu pid %d still there after Remove", pid)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("instance directory still there: %v", err)
	}
	if _, ok := runtimetest.Find(t, rt, key); ok {
		t.Errorf("List still shows %s", key)
	}
	if err := rt.Remove(ctx, key); err != nil {
		t.Errorf("Remove of a removed key: %v", err)
	}
	select {
	case st := <-rt.Events():
		t.Errorf("event after Remove: %+v", st)
	default:
	}
}

// TestBootWithoutCmdline boots the image without its cmdline file: a Linux
// kernel whose command line names no console would print to VGA, so the
// runtime puts console=ttyS0 (ttyAMA0 on arm64) in front and the log shows
// the kernel's messages and init's.
func TestBootWithoutCmdline(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	key := "nocmdline.0"
	sp := spec(key, server.URL+"/"+testimage.UnikernelNoCmdlineImageName, "hello-arg")
	if err := rt.Start(ctx, sp); err != nil {
		t.Fatalf("Start: %v", err)
	}
	// Not quiet: the whole kernel log goes through the emulated UART first.
	logs := runtimetest.WaitLog(t, rt, key, testimage.UnikernelUp+" no-network", 150*time.Second)
	for _, want := range []string{"Linux version", testimage.UnikernelBooting, "greeting: hi there", "args: hello-arg"} {
		if !strings.Contains(logs, want) {
			t.Errorf("console lacks %q:\n%s", want, logs)
		}
	}

	console := "console=ttyS0"
	if runtime.GOARCH == "arm64" {
		console = "console=ttyAMA0"
	}
	want := console + ` "GREETING=hi there" hello-arg`
	if got := qemuAppend(t, rt.QemuPid(key)); got != want {
		t.Errorf("qemu -append %q, want %q", got, want)
	}
}

// qemuAppend is the -append argument of the qemu process pid.
func qemuAppend(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatalf("qemu command line: %v", err)
	}
	args := strings.Split(string(b), "\x00")
	for i, a := range args {
		if a == "-append" && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("qemu has no -append: %q", args)
	return ""
}

// TestRemoveWhileBooting removes a machine whose guest has not booted far
// enough to handle the power button: the press is repeated, so it still
// powers off before the grace period ends.
func TestRemoveWhileBooting(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	key := "early.0"
	if err := rt.Start(ctx, spec(key, imageURL)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	pid := rt.QemuPid(key)
	t0 := time.Now()
	if err := rt.Remove(ctx, key); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	took := time.Since(t0)
	t.Logf("Remove right after Start took %v", took.Round(time.Millisecond))
	if !processGone(pid) {
		t.Errorf("qemu pid %d still there", pid)
	}
	if took >= rt.Config().StopGrace {
		t.Errorf("Remove took %v: the guest never powered off", took)
	}
}

// TestForcedKVM runs a machine with Accel forced to kvm. What happens
// depends on the machine: a hardware KVM boots it; the kvm_pvm module of
// nested sandboxes cannot run an ordinary kernel and stops it with an
// internal error, which the runtime turns into FAILED (instead of a machine
// paused forever); without /dev/kvm, qemu refuses to start.
func TestForcedKVM(t *testing.T) {
	rt := newRuntime(t, func(c *unikernel.Config) { c.Accel = unikernel.AccelKVM })
	ctx := testCtx(t)
	if !rt.KVM() {
		t.Fatal("KVM() false with Accel kvm")
	}
	key := "kvm.0"
	_, pvmErr := os.Stat("/sys/module/kvm_pvm")
	kvmDev, devErr := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if devErr == nil {
		kvmDev.Close()
	}
	err := rt.Start(ctx, spec(key, imageURL))
	switch {
	case devErr != nil:
		t.Logf("no usable /dev/kvm (%v): Start: %v", devErr, err)
		if err == nil {
			t.Fatal("Start with Accel kvm and no /dev/kvm succeeded")
		}
	case pvmErr == nil:
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		st := runtimetest.WaitEvent(t, rt, key, 150*time.Second)
		t.Logf("kvm_pvm: %s", st.Detail)
		if st.Status != wire.StatusFailed || !strings.Contains(st.Detail, "internal error") {
			t.Errorf("event %+v, want FAILED with an internal error", st)
		}
	default:
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		t0 := time.Now()
		runtimetest.WaitLog(t, rt, key, testimage.UnikernelUp, 60*time.Second)
		t.Logf("KVM guest up %v after Start", time.Since(t0).Round(time.Millisecond))
	}
}

func TestExitRestartAndReplace(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	key := "svc2.0"
	// Code lists an image per architecture; this node's is picked.
	code := "http://127.0.0.1:1/none-arm64.tar.gz," + imageURL
	sp := spec(key, code, testimage.UnikernelModeExit0)
	sp.Arch = []string{"arm64", "x86_64"}
	if runtime.GOARCH == "arm64" {
		sp.Arch = []string{"amd64", "aarch64"}
	}
	sp.OneShot = true
	if err := rt.Start(ctx, sp); err != nil {
		t.Fatalf("Start: %v", err)
	}
	st := runtimetest.WaitEvent(t, rt, key, 90*time.Second)
	if st.Status != wire.StatusCompleted || st.ExitCode != 0 || st.ExitedAt.IsZero() {
		t.Fatalf("event %+v, want COMPLETED with code 0", st)
	}
	t.Logf("exit0: %s", st.Detail)
	if got, _ := runtimetest.Find(t, rt, key); got.Status != wire.StatusCompleted {
		t.Errorf("List: %+v, want COMPLETED", got)
	}
	if u, err := rt.Usage(ctx, key); err != nil || u != (runtimes.Usage{}) {
		t.Errorf("Usage of an exited instance = %+v, %v; want zero", u, err)
	}
	runtimetest.WaitLog(t, rt, key, "done", 5*time.Second)

	// Start on an exited key boots it again; the console is appended to.
	if err := rt.Start(ctx, sp); err != nil {
		t.Fatalf("restart: %v", err)
	}
	st = runtimetest.WaitEvent(t, rt, key, 90*time.Second)
	if st.Status != wire.StatusCompleted {
		t.Fatalf("second event %+v, want COMPLETED", st)
	}
	logs, _ := rt.Logs(ctx, key, 1<<20)
	if n := strings.Count(logs, testimage.UnikernelBooting); n != 2 {
		t.Errorf("console shows %d boots, want 2:\n%s", n, logs)
	}

	// Another spec under the same key replaces the instance.
	sp2 := spec(key, imageURL)
	if err := rt.Start(ctx, sp2); err != nil {
		t.Fatalf("replacing Start: %v", err)
	}
	logs = runtimetest.WaitLog(t, rt, key, testimage.UnikernelUp, 60*time.Second)
	if n := strings.Count(logs, testimage.UnikernelBooting); n != 1 {
		t.Errorf("replaced instance's console shows %d boots, want 1 (a fresh log)", n)
	}
	if got, _ := runtimetest.Find(t, rt, key); got.Status != wire.StatusRunning || len(got.Spec.Cmd) != 0 {
		t.Errorf("List: %+v, want RUNNING with the new spec", got)
	}
}

func TestGuestFailures(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	for _, tc := range []struct {
		mode   string
		code   int
		detail string
	}{
		{testimage.UnikernelModePanic, 1, "panicked"},
		{testimage.UnikernelModeReboot, 0, "guest reset"},
	} {
		key := "fail." + strings.TrimPrefix(tc.mode, "thicket.mode=")
		if err := rt.Start(ctx, spec(key, imageURL, tc.mode)); err != nil {
			t.Fatalf("Start %s: %v", key, err)
		}
		st := runtimetest.WaitEvent(t, rt, key, 90*time.Second)
		if st.Status != wire.StatusFailed || st.ExitCode != tc.code || !strings.Contains(st.Detail, tc.detail) {
			t.Errorf("%s: event %+v, want FAILED with code %d and %q", tc.mode, st, tc.code, tc.detail)
		}
		t.Logf("%s: %s (exit code %d)", tc.mode, st.Detail, st.ExitCode)
	}
}

func TestStartErrors(t *testing.T) {
	rt := newRuntime(t)
	small := newRuntime(t, func(c *unikernel.Config) { c.MaxImageBytes = 1 << 20 })
	ctx := testCtx(t)
	notTar := server.Add("nottar.tar.gz", []byte("not an archive"))
	noKernel := server.Add("nokernel.tar.gz", tarGz(t, map[string]string{"cmdline": "console=ttyS0"}))
	badKernel := server.Add("badkernel.tar.gz", tarGz(t, map[string]string{"kernel": "not a kernel"}))
	_, fresh := serveImage(t)
	wrongSum := strings.Repeat("0", 64)
	for _, tc := range []struct {
		name string
		rt   *unikernel.Runtime
		sp   wire.InstanceSpec
		want string
	}{
		{"404", rt, spec("e.1", server.URL+"/missing.tar.gz"), "404"},
		{"unreachable", rt, spec("e.2", "http://127.0.0.1:1/x.tar.gz"), "fetch image"},
		{"not http", rt, spec("e.3", "ftp://example.com/x.tar.gz"), "http"},
		{"no code", rt, spec("e.4", ""), "no image URL"},
		{"bad fragment", rt, spec("e.5", imageURL+"#md5=00"), "sha256"},
		{"digest mismatch", rt, spec("e.6", fresh+"#sha256="+wrongSum), "want " + wrongSum},
		{"oversize", small, spec("e.7", imageURL), "over the limit"},
		{"not a tar.gz", rt, spec("e.8", notTar), "not a .tar.gz"},
		{"no kernel", rt, spec("e.9", noKernel), "no kernel"},
		{"bad kernel", rt, spec("e.10", badKernel), "qemu"},
		{"no arch", rt, withArch(spec("e.11", imageURL), "riscv64"), "architecture"},
		{"urls without arch", rt, spec("e.12", imageURL+","+imageURL), "no arch"},
		{"bad env", rt, withEnv(spec("e.13", imageURL), "NOEQUALS"), "KEY=value"},
		{"quote in cmd", rt, spec("e.14", imageURL, `a"b`), "double quotes"},
		{"missing netns", rt, withNetns(spec("e.15", imageURL), "/run/netns/thicket-no-such-ns"), "network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rt.Start(ctx, tc.sp)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, want an error with %q", err, tc.want)
			}
			t.Logf("%v", err)
			if _, ok := runtimetest.Find(t, tc.rt, tc.sp.Key); ok {
				t.Errorf("List shows %s after a failed Start", tc.sp.Key)
			}
			if _, err := os.Stat(tc.rt.InstanceDir(tc.sp.Key)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("instance directory left behind: %v", err)
			}
		})
	}
}

func withArch(sp wire.InstanceSpec, arch ...string) wire.InstanceSpec {
	sp.Arch = arch
	return sp
}

func withEnv(sp wire.InstanceSpec, env ...string) wire.InstanceSpec {
	sp.Environment = env
	return sp
}

func withNetns(sp wire.InstanceSpec, path string) wire.InstanceSpec {
	sp.Labels = map[string]string{runtimes.LabelNetNS: path}
	return sp
}

func TestAdoption(t *testing.T) {
	stateDir := t.TempDir()
	cfg := unikernel.Config{NodeName: "n1", StateDir: stateDir, Policy: testPolicy()}
	rt1, err := unikernel.New(context.Background(), cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	closed := false
	t.Cleanup(func() {
		if !closed {
			states, _ := rt1.List(ctx)
			for _, st := range states {
				_ = rt1.Remove(ctx, st.Key)
			}
			rt1.Close()
		}
	})
	if err := rt1.Start(ctx, spec("ad.serve", imageURL)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := rt1.Start(ctx, spec("ad.exit", imageURL, testimage.UnikernelModeExit0)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	pid := rt1.QemuPid("ad.serve")
	// The engine goes away; its machines do not.
	if err := rt1.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true

	rt2 := openRuntime(t, cfg)
	st, ok := runtimetest.Find(t, rt2, "ad.serve")
	if !ok || st.Status != wire.StatusRunning || st.Spec.Code != imageURL || st.StartedAt.IsZero() {
		t.Fatalf("adopted List: %+v (found %v), want RUNNING with its spec", st, ok)
	}
	runtimetest.WaitLog(t, rt2, "ad.serve", testimage.UnikernelUp, 60*time.Second)
	if u, err := rt2.Usage(ctx, "ad.serve"); err != nil || u.MemoryMB <= 0 {
		t.Errorf("Usage of an adopted machine = %+v, %v", u, err)
	}
	// The one-shot machine ends while the new runtime watches it (or had
	// already ended when it started).
	if st, _ := runtimetest.Find(t, rt2, "ad.exit"); st.Status == wire.StatusRunning {
		st = runtimetest.WaitEvent(t, rt2, "ad.exit", 90*time.Second)
		if st.Status != wire.StatusCompleted {
			t.Errorf("adopted one-shot ended %+v, want COMPLETED", st)
		}
	}
	if st, _ := runtimetest.Find(t, rt2, "ad.exit"); st.Status != wire.StatusCompleted {
		t.Errorf("adopted one-shot: %+v, want COMPLETED", st)
	}
	// A restart of an adopted, exited instance works.
	if err := rt2.Start(ctx, spec("ad.exit", imageURL, testimage.UnikernelModeExit0)); err != nil {
		t.Fatalf("restart of an adopted instance: %v", err)
	}
	if st := runtimetest.WaitEvent(t, rt2, "ad.exit", 90*time.Second); st.Status != wire.StatusCompleted {
		t.Errorf("restarted one-shot ended %+v, want COMPLETED", st)
	}

	if err := rt2.Remove(ctx, "ad.serve"); err != nil {
		t.Fatalf("Remove through the adopting runtime: %v", err)
	}
	if !processGone(pid) {
		t.Errorf("qemu pid %d still there after Remove", pid)
	}
	if _, ok := runtimetest.Find(t, rt2, "ad.serve"); ok {
		t.Errorf("List still shows ad.serve")
	}
}

// TestNetwork gives the machine an instance namespace like the net
// manager's: netns "inst" holds eth0 (10.99.0.2/24, default route via
// 10.99.0.1), the peer of a veth whose other end is in netns "node"
// (10.99.0.1/24). From "node", the machine answers HTTP on 10.99.0.2.
func TestNetwork(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	suffix := fmt.Sprintf("%d", os.Getpid()%100000)
	nodeNS := makeNetns(t, "thkuk-node-"+suffix)
	instNS, instPath := makeNetnsPath(t, "thkuk-inst-"+suffix)
	hInst, err := netlink.NewHandleAt(instNS, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer hInst.Close()
	hNode, err := netlink.NewHandleAt(nodeNS, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer hNode.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", MTU: 1450}, PeerName: "vinst", PeerNamespace: netlink.NsFd(int(nodeNS))}
	if err := hInst.LinkAdd(veth); err != nil {
		t.Fatalf("veth: %v", err)
	}
	eth0, _ := hInst.LinkByName("eth0")
	peer, _ := hNode.LinkByName("vinst")
	mustAddr(t, hInst, eth0, "10.99.0.2/24")
	mustAddr(t, hNode, peer, "10.99.0.1/24")
	for _, l := range []struct {
		h *netlink.Handle
		n string
	}{{hInst, "eth0"}, {hInst, "lo"}, {hNode, "vinst"}, {hNode, "lo"}} {
		link, err := l.h.LinkByName(l.n)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.h.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
	}
	if err := hInst.RouteAdd(&netlink.Route{Gw: net.ParseIP("10.99.0.1"), LinkIndex: eth0.Attrs().Index}); err != nil {
		t.Fatalf("default route: %v", err)
	}
	macBefore := eth0.Attrs().HardwareAddr.String()

	client := &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialInNetns(ctx, nodeNS, network, addr)
			},
			DisableKeepAlives: true,
		},
	}
	get := func(timeout time.Duration) (string, error) {
		deadline := time.Now().Add(timeout)
		var lastErr error
		for time.Now().Before(deadline) {
			resp, err := client.Get("http://10.99.0.2:8080/")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return string(b), nil
			}
			lastErr = err
			time.Sleep(200 * time.Millisecond)
		}
		return "", lastErr
	}

	key := "net.0"
	sp := withNetns(spec(key, imageURL), instPath)
	for round := 1; round <= 2; round++ {
		t0 := time.Now()
		if err := rt.Start(ctx, sp); err != nil {
			t.Fatalf("round %d: Start: %v", round, err)
		}
		body, err := get(90 * time.Second)
		if err != nil {
			logs, _ := rt.Logs(ctx, key, 8<<10)
			t.Fatalf("round %d: GET http://10.99.0.2:8080/ from the node namespace: %v\nconsole:\n%s", round, err, logs)
		}
		if strings.TrimSpace(body) != testimage.UnikernelHello {
			t.Fatalf("round %d: body %q", round, body)
		}
		t.Logf("round %d: HTTP answered %v after Start", round, time.Since(t0).Round(time.Millisecond))
		logs := runtimetest.WaitLog(t, rt, key, testimage.UnikernelUp+" 10.99.0.2", 5*time.Second)
		_ = logs
		if _, err := hInst.LinkByName("tap0"); err != nil {
			t.Errorf("round %d: no tap0 in the instance namespace while running: %v", round, err)
		}
		if err := rt.Remove(ctx, key); err != nil {
			t.Fatalf("round %d: Remove: %v", round, err)
		}
		// eth0 is as the net manager made it; nothing of ours remains.
		eth0, err := hInst.LinkByName("eth0")
		if err != nil {
			t.Fatalf("round %d: eth0 gone: %v", round, err)
		}
		addrs, _ := hInst.AddrList(eth0, netlink.FAMILY_V4)
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.99.0.2/24" {
			t.Errorf("round %d: eth0 addresses after Remove: %v", round, addrs)
		}
		if eth0.Attrs().HardwareAddr.String() != macBefore || eth0.Attrs().MasterIndex != 0 {
			t.Errorf("round %d: eth0 changed: %+v", round, eth0.Attrs())
		}
		routes, _ := hInst.RouteList(nil, netlink.FAMILY_V4)
		hasDefault := false
		for _, r := range routes {
			if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
				hasDefault = r.Gw.String() == "10.99.0.1"
			}
		}
		if !hasDefault {
			t.Errorf("round %d: default route gone: %v", round, routes)
		}
		links, _ := hInst.LinkList()
		for _, l := range links {
			if n := l.Attrs().Name; n != "lo" && n != "eth0" {
				t.Errorf("round %d: %s left in the instance namespace", round, n)
			}
		}
		qdiscs, _ := hInst.QdiscList(eth0)
		for _, q := range qdiscs {
			if q.Type() == "ingress" {
				t.Errorf("round %d: ingress qdisc left on eth0", round)
			}
		}
	}
}

func mustAddr(t *testing.T, h *netlink.Handle, l netlink.Link, cidr string) {
	t.Helper()
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatalf("add %s to %s: %v", cidr, l.Attrs().Name, err)
	}
}

// makeNetns creates the named network namespace /run/netns/<name> for the
// test (deleted when it ends) and returns a handle of it.
func makeNetns(t *testing.T, name string) netns.NsHandle {
	ns, _ := makeNetnsPath(t, name)
	return ns
}

func makeNetnsPath(t *testing.T, name string) (netns.NsHandle, string) {
	t.Helper()
	// `ip netns` and not netns.NewNamed: iproute2 first makes /run/netns a
	// shared mount point, and creating namespaces without that step races
	// with a concurrent first `ip netns add` elsewhere (its self-bind of
	// /run/netns hides copies of our mounts that can then not be removed).
	exec.Command("ip", "netns", "del", name).Run() // left by an earlier, killed run
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("create netns %s: %v: %s", name, err, out)
	}
	ns, err := netns.GetFromName(name)
	if err != nil {
		exec.Command("ip", "netns", "del", name).Run()
		t.Fatalf("open netns %s: %v", name, err)
	}
	t.Cleanup(func() {
		ns.Close()
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("delete netns %s: %v: %s", name, err, out)
		}
	})
	return ns, filepath.Join("/run/netns", name)
}

// dialInNetns connects from network namespace ns: the socket is made on a
// thread that joined it (and that is never handed back).
func dialInNetns(ctx context.Context, ns netns.NsHandle, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			ch <- result{nil, err}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		ch <- result{c, err}
	}()
	res := <-ch
	return res.c, res.err
}

// tarGz builds a .tar.gz of regular files.
func tarGz(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
