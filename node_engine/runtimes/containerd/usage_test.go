package containerd_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
	ctrd "github.com/thicket-edge/thicket/node_engine/runtimes/containerd"
	"github.com/thicket-edge/thicket/node_engine/runtimes/runtimetest"
)

// usageWindow is the wall time between the two Usage calls of a rate.
const usageWindow = 3 * time.Second

func TestUsage(t *testing.T) {
	rt := newRuntime(t)
	for _, tc := range []struct {
		name     string
		cmd      []string
		milliCPU int64
		// Bounds of CPUPercent over usageWindow: generous, since other
		// work may share the machine.
		minCPU, maxCPU float64
	}{
		{name: "idle", milliCPU: 500, minCPU: 0, maxCPU: 10},
		// One goroutine spinning: about one core.
		{name: "spin", cmd: []string{"spin", "120"}, minCPU: 40, maxCPU: 130},
		// The same held to a quarter of a core by its CFS quota.
		{name: "capped", cmd: []string{"spin", "120"}, milliCPU: 250, minCPU: 5, maxCPU: 35},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			port := testharness.FreePort(t)
			s := spec(tc.name+".0", port, tc.cmd...)
			s.Resources.MilliCPU = tc.milliCPU
			if err := rt.Start(ctx, s); err != nil {
				t.Fatalf("Start: %v", err)
			}
			httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port))

			first, err := rt.Usage(ctx, s.Key)
			if err != nil {
				t.Fatalf("first Usage: %v", err)
			}
			if first.CPUPercent != 0 {
				t.Errorf("first Usage CPUPercent = %v, want 0", first.CPUPercent)
			}
			if first.MemoryMB <= 0 || first.MemoryMB > 64 {
				t.Errorf("first Usage MemoryMB = %d, want 1..64 (the limit)", first.MemoryMB)
			}
			if !rt.HasUsageSample(s.Key) {
				t.Errorf("no CPU sample kept after Usage")
			}
			time.Sleep(usageWindow)
			u, err := rt.Usage(ctx, s.Key)
			if err != nil {
				t.Fatalf("Usage: %v", err)
			}
			t.Logf("usage over %v: %.3f%% CPU, %d MiB", usageWindow, u.CPUPercent, u.MemoryMB)
			if u.CPUPercent < tc.minCPU || u.CPUPercent > tc.maxCPU {
				t.Errorf("CPUPercent = %.2f, want %v..%v", u.CPUPercent, tc.minCPU, tc.maxCPU)
			}
			if tc.name == "spin" && u.CPUPercent <= 0 {
				t.Errorf("busy instance reports no CPU use")
			}
			if u.MemoryMB <= 0 || u.MemoryMB > 64 {
				t.Errorf("MemoryMB = %d, want 1..64 (the limit)", u.MemoryMB)
			}
			checkMemoryAgainstCgroup(t, rt, s.Key, u.MemoryMB)

			if err := rt.Remove(ctx, s.Key); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if rt.HasUsageSample(s.Key) {
				t.Errorf("CPU sample kept after Remove")
			}
			if _, err := rt.Usage(ctx, s.Key); !errors.Is(err, runtimes.ErrNotFound) {
				t.Errorf("Usage after Remove: %v, want ErrNotFound", err)
			}
		})
	}
}

// An instance without a running process has zero usage and no sample; a
// restarted one starts a new rate.
func TestUsageWithoutProcess(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	port := testharness.FreePort(t)
	s := spec("crashy.0", port, "crash-after", "2")
	if err := rt.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	if u, err := rt.Usage(ctx, s.Key); err != nil || u.MemoryMB <= 0 {
		t.Fatalf("Usage while running = %+v, %v", u, err)
	}
	if ev := runtimetest.WaitEvent(t, rt, s.Key, time.Minute); ev.Status != wire.StatusFailed {
		t.Fatalf("event = %+v, want FAILED", ev)
	}
	if u, err := rt.Usage(ctx, s.Key); err != nil || u != (runtimes.Usage{}) {
		t.Errorf("Usage of an exited instance = %+v, %v; want zero, nil", u, err)
	}
	if rt.HasUsageSample(s.Key) {
		t.Errorf("CPU sample kept for an exited instance")
	}

	// Restarted: a new task, whose first reading gives no rate.
	if err := rt.Start(ctx, s); err != nil {
		t.Fatalf("restart: %v", err)
	}
	httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	if u, err := rt.Usage(ctx, s.Key); err != nil || u.CPUPercent != 0 || u.MemoryMB <= 0 {
		t.Errorf("first Usage after restart = %+v, %v; want 0%% CPU, some memory", u, err)
	}
	runtimetest.WaitEvent(t, rt, s.Key, time.Minute)

	// A container whose task never started (a failed start) has no usage
	// either.
	rtBad := newRuntime(t, func(c *ctrd.Config) { c.NetNS = "/nonexistent/netns" })
	bad := spec("badnet.0", testharness.FreePort(t))
	if err := rtBad.Start(ctx, bad); err == nil {
		t.Fatal("Start with a missing network namespace succeeded")
	}
	if u, err := rtBad.Usage(ctx, bad.Key); err != nil || u != (runtimes.Usage{}) {
		t.Errorf("Usage of a failed instance = %+v, %v; want zero, nil", u, err)
	}
}

func TestUsageUnknown(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	for _, key := range []string{"nothing.0", "odd key/with spaces.3"} {
		if u, err := rt.Usage(ctx, key); !errors.Is(err, runtimes.ErrNotFound) {
			t.Errorf("Usage(%q) = %+v, %v; want ErrNotFound", key, u, err)
		}
		if rt.HasUsageSample(key) {
			t.Errorf("sample kept for unknown key %q", key)
		}
	}
	// Another node's instance is unknown here too.
	port := testharness.FreePort(t)
	s := spec("mine.0", port)
	if err := rt.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	other := rt.Config()
	other.NodeName += "-other"
	other.StateDir = t.TempDir()
	rt2 := openRuntime(t, other)
	if _, err := rt2.Usage(ctx, s.Key); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("another node's Usage: %v, want ErrNotFound", err)
	}
}

// checkMemoryAgainstCgroup compares MemoryMB with the working set read from
// the instance's cgroup files (v1 or v2), allowing for the memory moving
// between the two reads.
func checkMemoryAgainstCgroup(t *testing.T, rt *ctrd.Runtime, key string, gotMB int64) {
	t.Helper()
	c, err := rt.Client().LoadContainer(nsCtx(t), ctrd.ContainerID(rt.Config().NodeName, key))
	if err != nil {
		t.Fatalf("load container: %v", err)
	}
	ociSpec, err := c.Spec(nsCtx(t))
	if err != nil || ociSpec.Linux == nil || ociSpec.Linux.CgroupsPath == "" {
		t.Fatalf("container spec has no cgroup path: %v", err)
	}
	cg := ociSpec.Linux.CgroupsPath
	// Usage reads this group itself (not through containerd) on a host
	// where the tests run: as root, with the cgroup file system.
	if rt.CgroupPath(key) != cg || !rt.ReadsCgroup(key) {
		t.Errorf("Usage reads cgroup %s (itself: %v), the task's is %s", rt.CgroupPath(key), rt.ReadsCgroup(key), cg)
	}
	var usage, inactive uint64
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		dir := filepath.Join("/sys/fs/cgroup", cg)
		usage = readUint(t, filepath.Join(dir, "memory.current"))
		inactive = statField(t, filepath.Join(dir, "memory.stat"), "inactive_file")
	} else {
		dir := filepath.Join("/sys/fs/cgroup/memory", cg)
		usage = readUint(t, filepath.Join(dir, "memory.usage_in_bytes"))
		inactive = statField(t, filepath.Join(dir, "memory.stat"), "total_inactive_file")
	}
	ws := float64(usage-min(usage, inactive)) / (1 << 20)
	t.Logf("cgroup %s: usage %d B, inactive_file %d B: working set %.2f MiB; Usage said %d MiB", cg, usage, inactive, ws, gotMB)
	if d := float64(gotMB) - ws; d < -2 || d > 3 {
		t.Errorf("MemoryMB = %d, cgroup working set %.2f MiB", gotMB, ws)
	}
}

func readUint(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read cgroup: %v", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

func statField(t *testing.T, path, field string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("read cgroup: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, val, ok := strings.Cut(sc.Text(), " "); ok && name == field {
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				t.Fatalf("%s: %s: %v", path, field, err)
			}
			return n
		}
	}
	t.Fatalf("%s has no %s", path, field)
	return 0
}
