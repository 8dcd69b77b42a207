// Package testharness starts Thicket on this machine for tests and for the
// benchmark: it finds the repository, builds the programs once, runs them
// as child processes (thicket-root, thicket-cluster, thicket-node and
// thicket-net, or any other program) and makes network namespace "hosts"
// on a bridge.
//
// The core returns errors and takes a context; it does not import package
// testing, so that the benchmark's program can use it. The Must functions
// (tb.go) are thin helpers for tests on top of it: they fail the test
// instead of returning an error and stop what they started when it ends.
package testharness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// The programs, by package path in the repository.
const (
	RootProgram    = "root_orchestrator/cmd/thicket-root"
	ClusterProgram = "cluster_orchestrator/cmd/thicket-cluster"
	NodeProgram    = "node_engine/cmd/thicket-node"
	NetProgram     = "net_manager/cmd/thicket-net"
	CLIProgram     = "cli/cmd/thicket"
	// LogWriterProgram writes an instance's output; thicket-node uses the
	// one built beside it (node_engine/logwriter).
	LogWriterProgram = "node_engine/cmd/thicket-log-writer"
)

// Daemons are the programs a whole Thicket runs.
var Daemons = []string{RootProgram, ClusterProgram, NodeProgram, NetProgram, LogWriterProgram}

// FindRepo returns the repository root: dir if not empty, else the nearest
// directory at or above the working directory that holds go.mod and the
// root orchestrator's command.
func FindRepo(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isRepo(d) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("no Thicket checkout in this directory or above: run from the repository")
		}
		d = parent
	}
}

func isRepo(d string) bool {
	_, err := os.Stat(filepath.Join(d, "go.mod"))
	_, err2 := os.Stat(filepath.Join(d, RootProgram))
	return err == nil && err2 == nil
}

// GoCommand is the go command: on PATH, else in $GOROOT/bin or
// /usr/local/go/bin (where Debian's golang or a tarball puts it).
func GoCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	for _, root := range []string{os.Getenv("GOROOT"), "/usr/local/go"} {
		if root == "" {
			continue
		}
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Bin is a directory of programs built from the repository. Each program
// is built once, however often Build is asked for it. Safe for concurrent
// use.
type Bin struct {
	// Repo is the repository root, Dir where the programs go.
	Repo, Dir string

	mu    sync.Mutex
	built map[string]bool
}

// NewBin returns a Bin that builds the programs of repo into dir.
func NewBin(repo, dir string) *Bin {
	return &Bin{Repo: repo, Dir: dir, built: map[string]bool{}}
}

// TempBin returns a Bin for the repository around the working directory
// that builds into a new temporary directory; Remove deletes it. A test
// binary makes one in TestMain.
func TempBin() (*Bin, error) {
	repo, err := FindRepo("")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "thicket-bin-")
	if err != nil {
		return nil, err
	}
	return NewBin(repo, dir), nil
}

// Build builds those of the programs (package paths relative to the
// repository, e.g. RootProgram) not built yet, together, as they are
// released (the Makefile's build): static (CGO_ENABLED=0), without file
// paths and symbols. The build matters to the footprint the benchmark
// measures.
func (b *Bin) Build(ctx context.Context, programs ...string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", b.Dir + string(filepath.Separator)}
	var todo []string
	for _, p := range programs {
		if !b.built[p] {
			todo = append(todo, p)
			args = append(args, "./"+p)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	cmd := exec.CommandContext(ctx, GoCommand(), args...)
	cmd.Dir = b.Repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %w\n%s", todo, err, out)
	}
	for _, p := range todo {
		b.built[p] = true
	}
	return nil
}

// Path is the built program's file (program as given to Build).
func (b *Bin) Path(program string) string {
	return filepath.Join(b.Dir, filepath.Base(program))
}

// Remove deletes the directory and its programs.
func (b *Bin) Remove() error { return os.RemoveAll(b.Dir) }
