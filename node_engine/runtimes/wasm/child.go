package wasm

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/logwriter"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
)

// ChildCommand is the hidden first argument with which a program that
// embeds this runtime (thicket-node, a test binary) runs one module as a
// sandbox process: its main calls RunChild first thing when os.Args[1] is
// ChildCommand.
const ChildCommand = "wasm-run"

// Child file descriptors: the parent writes the ChildConfig (JSON) into
// configFD and closes it once the child is in its cgroup; the child writes
// one line into readyFD, "ok" just before _start runs or the error that
// kept the module from running.
const (
	configFD = 3
	readyFD  = 4
)

// ChildConfig is what a sandbox process runs: it travels over a pipe, never
// in argv or the environment, since the instance's environment may hold
// secrets.
type ChildConfig struct {
	// Module is the file of the module, whose SHA-256 must be Digest.
	Module string `json:"module"`
	Digest string `json:"digest"`
	// CompileCache is wazero's compilation cache directory.
	CompileCache string `json:"compile_cache"`
	// Name is argv[0] of the module and the module's name.
	Name string   `json:"name"`
	Args []string `json:"args"`
	// Env is the module's environment, KEY=value.
	Env []string `json:"env"`
	// MemoryLimit bounds the module's linear memory in bytes (0: none).
	MemoryLimit uint64 `json:"memory_limit"`
	// ExitFile receives the ExitRecord when the module ends.
	ExitFile string `json:"exit_file"`
}

// ExitRecord is how a module ended, written by the sandbox process.
type ExitRecord struct {
	Status   string `json:"status"`
	ExitCode int    `json:"exit_code"`
	Detail   string `json:"detail"`
}

// RunChild is the main of a sandbox process (ChildCommand): it reads its
// ChildConfig from fd 3, runs the module with stdout and stderr as its own
// (the instance's log), writes the ExitRecord and returns the exit code
// for os.Exit. SIGTERM stops the module.
func RunChild() int {
	ready := os.NewFile(readyFD, "ready")
	fail := func(err error) int {
		if ready != nil {
			fmt.Fprintf(ready, "%s\n", oneLine(err.Error()))
		}
		fmt.Fprintf(os.Stderr, "thicket wasm sandbox: %v\n", err)
		return 1
	}
	cf := os.NewFile(configFD, "config")
	if cf == nil || ready == nil {
		return fail(errors.New("no config pipe: run by the node engine only"))
	}
	var cfg ChildConfig
	err := json.NewDecoder(io.LimitReader(cf, 16<<20)).Decode(&cfg)
	cf.Close()
	if err != nil {
		return fail(fmt.Errorf("read the sandbox config: %w", err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// The module's output as the instance's log records: timestamped
	// lines, streams marked (wire.ParseLog), as containers' log writer
	// writes them.
	out := logwriter.NewRecords(os.Stdout)
	stdout, stderr := out.Stream(wire.StreamStdout), out.Stream(wire.StreamStderr)
	rec, err := RunModule(ctx, cfg, stdout, stderr, func() {
		fmt.Fprintln(ready, "ok")
		ready.Close()
		ready = nil
	})
	_, _ = stdout.Close(), stderr.Close() // their unfinished last lines
	if err != nil {
		return fail(err)
	}
	if data, err := json.Marshal(rec); err == nil {
		if err := runtimes.WriteFileAtomic(cfg.ExitFile, data); err != nil {
			fmt.Fprintf(os.Stderr, "thicket wasm sandbox: record the exit: %v\n", err)
		}
	}
	return rec.ExitCode & 0xff
}

// RunModule runs cfg's module in this process until it ends or ctx is
// done: what a sandbox process does, and what the benchmark times in
// process. started is called just before _start runs. An error means the
// module could not run at all (read, digest, compilation, instantiation,
// memory at start over the limit).
func RunModule(ctx context.Context, cfg ChildConfig, stdout, stderr io.Writer, started func()) (ExitRecord, error) {
	data, err := os.ReadFile(cfg.Module)
	if err != nil {
		return ExitRecord{}, fmt.Errorf("read module: %w", err)
	}
	if d := fetch.SHA256(data); cfg.Digest != "" && d != cfg.Digest {
		return ExitRecord{}, fmt.Errorf("module file %s has sha256 %s, want %s", cfg.Module, d, cfg.Digest)
	}
	wz, closeWz, err := newEngine(ctx, cfg.CompileCache)
	if err != nil {
		return ExitRecord{}, err
	}
	defer closeWz()
	cm, err := wz.CompileModule(ctx, data)
	if err != nil {
		return ExitRecord{}, fmt.Errorf("compile module: %w", err)
	}
	if cm.ExportedFunctions()["_start"] == nil {
		return ExitRecord{}, errors.New("module exports no _start: not a WASI command")
	}
	mem := newLinearMemory(cfg.MemoryLimit)
	mcfg := wazero.NewModuleConfig().
		WithName(cfg.Name).
		WithArgs(append([]string{cfg.Name}, cfg.Args...)...).
		WithStdout(stdout).
		WithStderr(stderr).
		WithStartFunctions(). // _start runs below
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(sleeper(ctx)).
		WithRandSource(crand.Reader)
	env, err := parseEnv(cfg.Env)
	if err != nil {
		return ExitRecord{}, err
	}
	for _, kv := range env {
		mcfg = mcfg.WithEnv(kv[0], kv[1])
	}
	mod, err := wz.InstantiateModule(experimental.WithMemoryAllocator(ctx, mem), cm, mcfg)
	if err != nil {
		return ExitRecord{}, fmt.Errorf("instantiate module: %w", err)
	}
	defer mod.Close(context.Background())
	if limit := cfg.MemoryLimit; limit > 0 && mem.Size() > limit {
		return ExitRecord{}, fmt.Errorf("module needs %s of memory at start, over the memory limit of %s", mib(mem.Size()), mib(limit))
	}
	start := mod.ExportedFunction("_start")
	if started != nil {
		started()
	}
	_, err = start.Call(ctx)
	code, status, detail := exitStatus(err, mem)
	return ExitRecord{Status: status, ExitCode: code, Detail: detail}, nil
}

// newEngine makes a wazero runtime with the compilation cache in dir (none
// if empty) and WASI. CloseOnContextDone makes a module stop when its
// context is cancelled.
func newEngine(ctx context.Context, dir string) (wazero.Runtime, func(), error) {
	rc := wazero.NewRuntimeConfig().WithCloseOnContextDone(true)
	var cache wazero.CompilationCache
	if dir != "" {
		c, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("compilation cache: %w", err)
		}
		cache = c
		rc = rc.WithCompilationCache(cache)
	}
	wz := wazero.NewRuntimeWithConfig(ctx, rc)
	closeAll := func() {
		_ = wz.Close(context.Background())
		if cache != nil {
			_ = cache.Close(context.Background())
		}
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, wz); err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("WASI: %w", err)
	}
	return wz, closeAll, nil
}

func oneLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return truncate(string(b))
}
