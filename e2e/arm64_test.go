package e2e

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"context"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/testimage"
)

// TestArm64Worker builds the worker (thicket-node, thicket-net) for
// linux/arm64 as `make build` does, checks the binaries are static AArch64
// executables, and runs the arm64 node engine under qemu-user
// (qemu-aarch64-static, installed by .ci/run) as a worker of a real
// cluster: it registers as an arm64 node and runs a WebAssembly module.
// Containers are left out: the emulated engine would drive this machine's
// amd64 containerd and runc, which says nothing about arm64.
func TestArm64Worker(t *testing.T) {
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		t.Fatalf("qemu-aarch64-static is missing (apt-get install qemu-user-static; .ci/run does): %v", err)
	}
	dir := t.TempDir()
	for _, prog := range []string{testharness.NodeProgram, testharness.NetProgram} {
		out := filepath.Join(dir, filepath.Base(prog)+"-linux-arm64")
		cmd := exec.Command(testharness.GoCommand(), "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./"+prog)
		cmd.Dir = bin.Repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s for arm64: %v\n%s", prog, err, b)
		}
		f, err := elf.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
			t.Errorf("%s: machine %v class %v, want EM_AARCH64 ELFCLASS64", out, f.Machine, f.Class)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s asks for a dynamic loader: a worker binary must be static", out)
			}
		}
		f.Close()
		// It runs under emulation: its help names the program.
		help, err := exec.Command(qemu, out, "--help").CombinedOutput()
		if err != nil || !strings.Contains(string(help), "Usage: thicket-") {
			t.Fatalf("%s --help under qemu: %v\n%s", out, err, help)
		}
	}

	s := newSystem(t)
	c := s.addCluster("arm", "")
	h := s.net.MustAddHost(t, 71)
	name := "e2e" + runID + "arm"
	bin.MustStartNode(t, testharness.NodeOptions{Name: name, Label: "arm64", Host: h,
		ClusterURL: c.nodeURL, Token: c.nodeToken, Namespace: s.ctrNS, MemoryMB: 1024,
		Engine: []string{qemu, filepath.Join(dir, "thicket-node-linux-arm64")},
		// The module is served from this machine's bridge address, which the
		// default code policy refuses (a private address, no pin).
		// Its wasm sandboxes are the same arm64 binary, under the same
		// emulator: no binfmt handler here runs a foreign binary by itself.
		Args: []string{"--virtualizations", "wasm", "--code-allow-net", bridgeAddr + "/32", "--code-allow-unpinned",
			"--wasm-sandbox-exec", qemu + " " + filepath.Join(dir, "thicket-node-linux-arm64")}})

	testharness.WaitFor(t, 2*time.Minute, "the emulated node registered as arm64", func() (bool, string) {
		var cls []api.Cluster
		s.api.must("GET", "/api/clusters/", nil, &cls)
		for _, cl := range cls {
			for _, n := range cl.Nodes {
				if n.Name == name {
					return n.Arch == "arm64" && n.Active, fmt.Sprintf("arch %q active %v", n.Arch, n.Active)
				}
			}
		}
		return false, "not listed"
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mod, err := testimage.WasmModule(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := serveFiles(t, map[string][]byte{"wasmapp.wasm": mod})
	ids := s.app("armwasm", map[string]any{"microservice_name": "hello", "virtualization": "wasm",
		"code": base + "/wasmapp.wasm", "memory": 64, "one_shot": true, "environment": []string{"GREETING=arm"},
		"arch": []string{"arm64"}, "constraints": pin("arm", name)})
	s.scaleUp(ids["hello"])
	in := s.api.waitInstance(ids["hello"], 0, 3*time.Minute, "completed on the arm64 node", func(in api.Instance) bool {
		return in.Status == wire.StatusCompleted || in.Status == wire.StatusFailed
	})
	if in.Status != wire.StatusCompleted || in.NodeName != name {
		t.Fatalf("instance %s (%s) on %q, want COMPLETED on %s", in.Status, in.StatusDetail, in.NodeName, name)
	}
	testharness.WaitFor(t, 30*time.Second, "the module's output", func() (bool, string) {
		var l struct {
			Logs string `json:"logs"`
		}
		s.api.must("GET", "/api/service/"+ids["hello"]+"/instance/0/logs", nil, &l)
		return strings.Contains(l.Logs, "hello from wasm") && strings.Contains(l.Logs, "arm"), l.Logs
	})
}
