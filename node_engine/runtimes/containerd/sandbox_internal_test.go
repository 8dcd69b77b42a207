package containerd

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/thicket-edge/thicket/contract/wire"
)

// profileNames builds a container's spec with sec's sandbox and returns
// its seccomp profile's architectures and system call names.
func profileNames(t *testing.T, sec *wire.Security) ([]specs.Arch, []string) {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), "thicket-test")
	s, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "c"}, sandboxOpts(sec, DefaultPidsLimit)...)
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp == nil {
		t.Fatal("no seccomp profile")
	}
	var names []string
	for _, r := range s.Linux.Seccomp.Syscalls {
		if len(r.Names) == 0 {
			t.Errorf("a rule without names: %+v", r)
		}
		names = append(names, r.Names...)
	}
	return s.Linux.Seccomp.Architectures, names
}

// TestProfileNativeNames: the default profile names only system calls the
// node's architecture has (runc resolves and adds every name at each
// start); compat32 keeps Docker's profile whole. Docker's profile allows
// the 32-bit interfaces' calls too: _llseek, futex_time64 and socketcall
// are 32-bit only, read is everyone's.
func TestProfileNativeNames(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Fatalf("no expectations for %s in this test", runtime.GOARCH)
	}
	arches, names := profileNames(t, nil)
	if len(arches) != 1 || arches[0] != nativeArch {
		t.Errorf("architectures %v, want %s only", arches, nativeArch)
	}
	for _, n := range names {
		if _, ok := slices.BinarySearch(nativeSyscalls, n); !ok {
			t.Errorf("the profile names %q, which %s does not have", n, runtime.GOARCH)
		}
	}
	for _, n := range []string{"read", "openat", "clone3", "io_uring_setup"} {
		if !slices.Contains(names, n) {
			t.Errorf("the profile lost %q", n)
		}
	}
	// With a capability that allows more calls, those stay.
	if _, names := profileNames(t, &wire.Security{CapAdd: []string{"CAP_SYS_PTRACE"}}); !slices.Contains(names, "process_vm_readv") {
		t.Error("CAP_SYS_PTRACE's process_vm_readv is not allowed")
	}
	_, all := profileNames(t, &wire.Security{Compat32: true})
	for _, n := range []string{"_llseek", "futex_time64", "socketcall", "read"} {
		if !slices.Contains(all, n) {
			t.Errorf("compat32: the profile lost %q", n)
		}
	}
	if len(all) <= len(names) {
		t.Errorf("compat32 names %d calls, the native profile %d", len(all), len(names))
	}
	if !slices.IsSorted(nativeSyscalls) {
		t.Error("the generated table is not sorted")
	}
}

// TestSyscallTablesCurrent: the generated tables are what gensyscalls
// writes from the golang.org/x/sys that go.mod requires (run go generate
// after an upgrade of x/sys: a stale table would refuse a new system call
// the profile allows).
func TestSyscallTablesCurrent(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("go", "run", "./gensyscalls", dir).CombinedOutput(); err != nil {
		t.Fatalf("gensyscalls: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "zsyscalls_*.go"))
	if len(files) == 0 {
		t.Fatal("gensyscalls wrote no table")
	}
	for _, f := range files {
		want, _ := os.ReadFile(f)
		have, err := os.ReadFile(filepath.Base(f))
		if err != nil || !bytes.Equal(have, want) {
			t.Errorf("%s is not what gensyscalls writes (%v): run go generate ./node_engine/runtimes/containerd", filepath.Base(f), err)
		}
	}
}
