package cgroup_test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/node_engine/internal/cgroup"
)

func TestParseMountinfo(t *testing.T) {
	for _, tc := range []struct {
		name, mountinfo string
		v2              bool
	}{
		{"v1", `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
`, false},
		// A hybrid host mounts the unified hierarchy too: Detect then
		// looks at its cgroup.controllers to choose.
		{"hybrid", `35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`, true},
		{"v2", `29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
`, true},
		{"bind mount of a sub-group", `50 23 0:26 /kubepods /sys/fs/cgroup rw - cgroup2 cgroup2 rw
`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := cgroup.ParseMountinfo([]byte(tc.mountinfo))
			if h.V2() != tc.v2 {
				t.Errorf("V2 = %v, want %v", h.V2(), tc.v2)
			}
		})
	}
}

func TestParseKeyed(t *testing.T) {
	got := cgroup.ParseKeyed([]byte("usage_usec 1500\nuser_usec 1000\nbogus\nnr_periods x\n"))
	if len(got) != 2 || got["usage_usec"] != 1500 || got["user_usec"] != 1000 {
		t.Errorf("ParseKeyed = %v", got)
	}
}

// TestLimits puts a busy shell loop into a group limited to a fifth of a
// core and checks, with the kernel's own accounting, that it got no more,
// then kills and deletes the group.
func TestLimits(t *testing.T) {
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	path := fmt.Sprintf("thicket-cgroup-test/%d", os.Getpid())
	g, err := h.Create(path, cgroup.Limits{MilliCPU: 200, MemoryBytes: 64 << 20, Pids: 16})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		_ = g.Kill()
		if err := g.Delete(); err != nil {
			t.Errorf("Delete: %v", err)
		}
		g.DeleteParent(1)
	})
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	if err := g.Add(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("Add: %v", err)
	}
	if !g.Has(cmd.Process.Pid) {
		t.Fatalf("Has(%d) = false after Add", cmd.Process.Pid)
	}
	s0, err := g.Stat()
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	const window = 2 * time.Second
	time.Sleep(window)
	s1, err := g.Stat()
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	used := s1.CPU - s0.CPU
	// 20% of one core over the window, with a margin for the period
	// boundaries.
	if limit := window/5 + 100*time.Millisecond; used > limit || used < window/20 {
		t.Errorf("the busy loop used %v of CPU in %v under a limit of 200 millicores; want between %v and %v", used, window, window/20, limit)
	}
	t.Logf("CPU %v in %v, working set %d bytes, OOM kills %d", used, window, s1.WorkingSet, s1.OOMKills)
	if err := g.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("the process outlived Kill")
	}
	if procs, _ := g.Procs(); len(procs) != 0 {
		t.Errorf("Procs after Kill = %v", procs)
	}
}

// TestMemoryLimit runs a process that needs more memory than its group
// has: the kernel kills it and the group counts the kill.
func TestMemoryLimit(t *testing.T) {
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	g, err := h.Create(fmt.Sprintf("thicket-cgroup-test/mem-%d", os.Getpid()), cgroup.Limits{MemoryBytes: 16 << 20})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		_ = g.Kill()
		_ = g.Delete()
		g.DeleteParent(1)
	})
	// The shell waits for its stdin to close before it grows, so that it
	// is in the group by then: 64 MiB of a string in memory.
	cmd := exec.Command("sh", "-c", `read x; s=x; i=0; while [ $i -lt 26 ]; do s="$s$s"; i=$((i+1)); done; echo done`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("Add: %v", err)
	}
	stdin.Close()
	err = cmd.Wait()
	if err == nil {
		t.Fatal("the shell grew to 64 MiB under a 16 MiB limit")
	}
	s, serr := g.Stat()
	if serr != nil {
		t.Fatalf("Stat: %v", serr)
	}
	if s.OOMKills == 0 {
		t.Errorf("the shell ended (%v) but the group counts no OOM kill", err)
	}
}
