package containerd_test

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/containerd/containerd"
	"golang.org/x/sys/unix"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	ctrd "github.com/thicket-edge/thicket/node_engine/runtimes/containerd"
	"github.com/thicket-edge/thicket/node_engine/runtimes/runtimetest"
)

// The AUDIT_ARCH values a seccomp filter compares seccomp_data.arch with
// (linux/audit.h).
const (
	auditArchX86_64  = 0xc000003e
	auditArchI386    = 0x40000003
	auditArchAArch64 = 0xc00000b7
	auditArchARM     = 0x40000028
)

// archChecks are the native and the 32-bit architectures of this machine.
func archChecks(t *testing.T) (native uint32, compat []uint32) {
	switch runtime.GOARCH {
	case "amd64":
		return auditArchX86_64, []uint32{auditArchI386}
	case "arm64":
		return auditArchAArch64, []uint32{auditArchARM}
	}
	t.Fatalf("no architecture table for %s in this test", runtime.GOARCH)
	return 0, nil
}

// TestSeccompNativeArchitecture: the seccomp filter the kernel holds for a
// container's process checks the node's native architecture only (a
// 32-bit system call meets the filter's bad-architecture action), unless
// the SLA asks for compat32, which gives Docker's profile with its 32-bit
// architectures. Read from the kernel (PTRACE_SECCOMP_GET_FILTER) rather
// than from the spec: what runc loaded is what confines. Running a 32-bit
// binary is not tested: this project's kernels have no IA32 emulation
// (exec of one fails with "exec format error" with or without a filter).
func TestSeccompNativeArchitecture(t *testing.T) {
	native, compat := archChecks(t)
	node := fmt.Sprintf("t%d-seccomp", os.Getpid())
	rt := newRuntime(t, func(c *ctrd.Config) { c.NodeName = node })
	for _, tc := range []struct {
		name       string
		sec        *wire.Security
		wantCompat bool
	}{
		{"default", nil, false},
		{"pids limit only", &wire.Security{PidsLimit: 100}, false},
		{"compat32", &wire.Security{Compat32: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec(fmt.Sprintf("sc%d.0", len(tc.name)), testharness.FreePort(t))
			s.Security = tc.sec
			if err := rt.Start(testCtx(t), s); err != nil {
				t.Fatalf("Start: %v", err)
			}
			if st, ok := runtimetest.Find(t, rt, s.Key); !ok || st.Status != wire.StatusRunning {
				t.Fatalf("instance %s (%s), want RUNNING", st.Status, st.Detail)
			}
			defer rt.Remove(testCtx(t), s.Key)
			arches := filterArches(t, taskPid(t, ctrd.ContainerID(node, s.Key)))
			if !slices.Contains(arches, native) {
				t.Fatalf("the loaded filter does not check the native architecture %#x: %#x", native, arches)
			}
			for _, a := range compat {
				if got := slices.Contains(arches, a); got != tc.wantCompat {
					t.Errorf("the filter checks the 32-bit architecture %#x: %v, want %v (arches compared: %#x)", a, got, tc.wantCompat, arches)
				}
			}
		})
	}
}

// TestSeccompNamesLeftOutChangeNothing: the profile's names the native
// interface does not have (left out so that runc does not resolve them at
// every start) make no difference to the filter the kernel gets: the
// program loaded for a container equals the one loaded from the profile
// with all of Docker's names.
func TestSeccompNamesLeftOutChangeNothing(t *testing.T) {
	node := fmt.Sprintf("t%d-scnames", os.Getpid())
	rt := newRuntime(t, func(c *ctrd.Config) { c.NodeName = node })
	program := func(key string) []unix.SockFilter {
		s := spec(key, testharness.FreePort(t))
		if err := rt.Start(testCtx(t), s); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if st, ok := runtimetest.Find(t, rt, s.Key); !ok || st.Status != wire.StatusRunning {
			t.Fatalf("instance %s (%s), want RUNNING", st.Status, st.Detail)
		}
		defer rt.Remove(testCtx(t), s.Key)
		return filterProgram(t, taskPid(t, ctrd.ContainerID(node, s.Key)))
	}
	trimmed := program("scn.0")
	restore := ctrd.SetNativeSyscalls(nil)
	all := program("scn.1")
	restore()
	if len(trimmed) < 100 {
		t.Fatalf("a filter of %d instructions: not Docker's profile", len(trimmed))
	}
	if !slices.Equal(trimmed, all) {
		t.Errorf("the filters differ: %d instructions with the native names, %d with all", len(trimmed), len(all))
	}
}

// taskPid is the pid of the container id's task.
func taskPid(t *testing.T, id string) int {
	t.Helper()
	c, err := containerd.New(ctrd.DefaultAddress, containerd.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctr, err := c.LoadContainer(nsCtx(t), id)
	if err != nil {
		t.Fatalf("container %s: %v", id, err)
	}
	task, err := ctr.Task(nsCtx(t), nil)
	if err != nil {
		t.Fatalf("task of %s: %v", id, err)
	}
	return int(task.Pid())
}

// filterProgram attaches to pid and reads its first seccomp filter
// program (the one runc loaded).
func filterProgram(t *testing.T, pid int) []unix.SockFilter {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.PtraceSeize(pid); err != nil {
		t.Fatalf("ptrace seize %d: %v", pid, err)
	}
	defer unix.PtraceDetach(pid)
	if err := unix.PtraceInterrupt(pid); err != nil {
		t.Fatalf("ptrace interrupt %d: %v", pid, err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
		t.Fatalf("wait %d: %v", pid, err)
	}
	n, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(pid), 0, 0, 0, 0)
	if errno != 0 {
		t.Fatalf("PTRACE_SECCOMP_GET_FILTER %d: %v", pid, errno)
	}
	prog := make([]unix.SockFilter, n)
	if _, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(pid), 0,
		uintptr(unsafe.Pointer(&prog[0])), 0, 0); errno != 0 {
		t.Fatalf("PTRACE_SECCOMP_GET_FILTER %d: %v", pid, errno)
	}
	return prog
}

// filterArches returns the constants pid's seccomp filter compares the
// architecture field with: the program's JEQ constants right after a load
// of seccomp_data.arch (offset 4).
func filterArches(t *testing.T, pid int) []uint32 {
	t.Helper()
	const archOffset = 4 // offsetof(struct seccomp_data, arch)
	var arches []uint32
	loadedArch := false
	for _, ins := range filterProgram(t, pid) {
		switch {
		case ins.Code == unix.BPF_LD|unix.BPF_W|unix.BPF_ABS:
			loadedArch = ins.K == archOffset
		case loadedArch && ins.Code == unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K:
			if !slices.Contains(arches, ins.K) {
				arches = append(arches, ins.K)
			}
		}
	}
	return arches
}
