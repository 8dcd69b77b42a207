// Package wasm runs "wasm" instances: WebAssembly modules (WASI preview 1
// commands) executed in the node engine's own process by
// github.com/tetratelabs/wazero, which is pure Go (no cgo, nothing to
// install).
//
// An instance's spec.Code is the http(s) URL of a .wasm module, optionally
// with a fragment "#sha256=<hex>" that the module's content must match. The
// module is downloaded once (at most Config.MaxModuleBytes) into
// <StateDir>/wasm/cache, keyed by the SHA-256 of the URL without its
// fragment: URLs are treated as immutable, so publish a new version under a
// new URL or pin it with a digest (a cached file that does not match the
// digest is downloaded again). It is compiled to machine code once per
// content: a compiled module is shared in memory by every instance of the
// same module (held or exited) and released with the last of them, and
// wazero's compilation cache on disk (<StateDir>/wasm/cache/compiled) makes
// compiling it again, after an engine restart or a redeploy, cheap. The
// wazero runtime itself (with its WASI host module and that cache) is made
// by the first Start: a node that runs no wasm instance does not pay for it.
//
// An instance runs its module's _start with argv = [file name of the URL
// path] + spec.Cmd, the environment spec.Environment (KEY=value), the real
// clocks, crypto/rand as its random source, no stdin, no files and no
// sockets; stdout and stderr are appended to <StateDir>/wasm/logs/<key>.log.
// Its linear memory is limited to spec.Resources.MemoryMB MiB (none if 0):
// a memory.grow past the limit fails, which most languages turn into an
// out-of-memory exit, and the instance's Detail then names the limit. A
// module that returns from _start, or calls proc_exit(0), is COMPLETED; one
// that calls proc_exit(n), n ≠ 0, is FAILED with exit code n; one that traps
// is FAILED with exit code 134 (as for an abort) and the trap in Detail.
//
// # No adoption
//
// Unlike containers, wasm modules run inside the node engine process: they
// do NOT survive an engine restart (or Close). A new Runtime holds no
// instances — List is empty — and the engine, reconciling against its
// desired set, simply starts them again (cheaply: the module and its
// compiled code are cached on disk). Their logs start over.
//
// # Limits
//
// CPU is not limited (wazero has no per-module CPU accounting or quota) and
// Usage reports CPUPercent 0; MemoryMB in Usage is the size of the module's
// linear memory, which is what a module can use, not the process's resident
// memory.
package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/thicket-edge/thicket/node_engine/internal/keyed"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
)

// Virtualization is the SLA virtualization this runtime runs.
const Virtualization = "wasm"

// Defaults of Config.
const (
	DefaultStateDir       = runtimes.DefaultStateDir
	DefaultMaxModuleBytes = 64 << 20
	// DefaultFetchTimeout bounds a module download with the default
	// HTTPClient.
	DefaultFetchTimeout = 5 * time.Minute
	// stopWait bounds how long Remove waits for a cancelled module to end.
	stopWait = 5 * time.Second
)

// Config configures the wasm runtime.
type Config struct {
	// NodeName names this node (in logs). The host name if empty.
	NodeName string
	// StateDir holds the module cache (<StateDir>/wasm/cache) and the logs
	// (<StateDir>/wasm/logs). DefaultStateDir if empty.
	StateDir string
	// MaxModuleBytes is the largest module downloaded
	// (DefaultMaxModuleBytes if zero or less).
	MaxModuleBytes int64
	// Policy says where modules may come from and how many download at
	// once (nil: the default fetch.Policy: public addresses, pinned by
	// sha256). It is checked before every start, cached modules included.
	Policy *fetch.Policy
	// HTTPClient downloads modules (nil: Policy's client, which checks
	// every connection's address, with DefaultFetchTimeout).
	HTTPClient *http.Client
	// LogMaxBytes bounds each instance's log file: larger, it is rotated
	// (runtimes.TrimLog; runtimes.DefaultLogMaxBytes if zero or less).
	LogMaxBytes int64
}

// Runtime runs instances as WebAssembly modules in this process. It
// implements runtimes.Runtime. Its methods are safe for concurrent use;
// Start and Remove of the same instance are serialised.
type Runtime struct {
	cfg      Config
	log      *slog.Logger
	cacheDir string // downloaded modules
	logDir   string
	// compDir is wazero's compilation cache on disk.
	compDir string

	// wzMu guards wz and compCache, made by the first Start (engine).
	wzMu      sync.Mutex
	compCache wazero.CompilationCache
	wz        wazero.Runtime

	events chan runtimes.State

	// ctx is cancelled by Close: every module runs under it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // run goroutines

	instances keyed.Mutex // per instance key: Start and Remove
	fetches   keyed.Mutex // per module URL (without fragment)
	compiles  keyed.Mutex // per module content digest

	mu       sync.Mutex
	closed   bool
	insts    map[string]*instance
	compiled map[string]*compiledModule // content digest -> compiled module
	// urlDigest is the digest of the module cached for each URL (without
	// fragment), as read or downloaded by this runtime.
	urlDigest map[string]string
	runSeq    uint64

	// counters, for tests and diagnostics (under mu)
	downloads    int
	compilations int
}

var _ runtimes.Runtime = (*Runtime)(nil)

// New returns a wasm runtime keeping its cache and logs under
// cfg.StateDir. It holds no instances: modules do not survive the process
// that ran them (see the package documentation).
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Runtime, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := runtimes.Defaults(&cfg.NodeName, &cfg.StateDir); err != nil {
		return nil, fmt.Errorf("wasm runtime: %w", err)
	}
	if cfg.MaxModuleBytes <= 0 {
		cfg.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if cfg.Policy == nil {
		cfg.Policy = &fetch.Policy{}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = cfg.Policy.Client(DefaultFetchTimeout)
	}
	base := filepath.Join(cfg.StateDir, "wasm")
	cacheDir := filepath.Join(base, "cache", "modules")
	logDir := filepath.Join(base, "logs")
	for _, d := range []string{cacheDir, logDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("wasm runtime: %w", err)
		}
	}
	bctx, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		cfg:       cfg,
		log:       log.With("runtime", Virtualization),
		cacheDir:  cacheDir,
		logDir:    logDir,
		compDir:   filepath.Join(base, "cache", "compiled"),
		events:    make(chan runtimes.State, runtimes.EventBuffer),
		ctx:       bctx,
		cancel:    cancel,
		insts:     map[string]*instance{},
		compiled:  map[string]*compiledModule{},
		urlDigest: map[string]string{},
	}
	runtimes.KeepLogsBounded(bctx, &r.wg, logDir, cfg.LogMaxBytes, r.log)
	return r, nil
}

// Virtualization implements runtimes.Runtime.
func (r *Runtime) Virtualization() string { return Virtualization }

// Available reports whether modules can be cached and logged here: the
// runtime itself is pure Go and always there.
func (r *Runtime) Available(ctx context.Context) error {
	for _, d := range []string{r.cacheDir, r.logDir} {
		f, err := os.CreateTemp(d, ".probe-*")
		if err != nil {
			return fmt.Errorf("wasm runtime: %s not writable: %w", d, err)
		}
		name := f.Name()
		f.Close()
		os.Remove(name)
	}
	return nil
}

// Events delivers a State whenever a module exits on its own (not when
// Remove, a replacing Start or Close stops it). It is buffered; when the
// buffer is full further exits are dropped (and logged), so the engine
// should read it continuously and also reconcile with List. The channel is
// closed by Close.
func (r *Runtime) Events() <-chan runtimes.State { return r.events }

// Config returns the configuration in force (defaults filled in).
func (r *Runtime) Config() Config { return r.cfg }

// Close stops every running module (they live in this process), closes
// Events and releases the compiled modules. No events are sent for the
// modules it stops.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	close(r.events)
	r.wzMu.Lock()
	defer r.wzMu.Unlock()
	if r.wz == nil {
		return nil
	}
	ctx := context.Background()
	err := r.wz.Close(ctx)
	if cerr := r.compCache.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wasm runtime: close: %w", err)
	}
	return nil
}

// engine returns the wazero runtime, making it on first use. One runtime
// serves every instance: compiled modules are shared, and memory limits
// are per instance (memory.go). CloseOnContextDone makes a module stop when
// its context is cancelled (Remove, Close).
func (r *Runtime) engine() (wazero.Runtime, error) {
	r.wzMu.Lock()
	defer r.wzMu.Unlock()
	if r.wz != nil {
		return r.wz, nil
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed { // Close runs: it would not close a runtime made now
		return nil, errors.New("runtime closed")
	}
	ctx := context.Background()
	compCache, err := wazero.NewCompilationCacheWithDir(r.compDir)
	if err != nil {
		return nil, fmt.Errorf("wasm runtime: compilation cache: %w", err)
	}
	wz := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(compCache).
		WithCloseOnContextDone(true))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, wz); err != nil {
		_ = wz.Close(ctx)
		_ = compCache.Close(ctx)
		return nil, fmt.Errorf("wasm runtime: WASI: %w", err)
	}
	r.wz, r.compCache = wz, compCache
	return wz, nil
}
