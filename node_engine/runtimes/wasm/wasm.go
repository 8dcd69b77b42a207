// Package wasm runs "wasm" instances: WebAssembly modules (WASI preview 1
// commands) executed by github.com/tetratelabs/wazero, which is pure Go (no
// cgo, nothing to install), each in a sandbox process of its own under the
// instance's CPU, memory and pids limits.
//
// An instance's spec.Code is the http(s) URL of a .wasm module, optionally
// with a fragment "#sha256=<hex>" that the module's content must match. The
// module is downloaded once (at most Config.MaxModuleBytes) into
// <StateDir>/wasm/cache, keyed by the SHA-256 of the URL without its
// fragment: URLs are treated as immutable, so publish a new version under a
// new URL or pin it with a digest (a cached file that does not match the
// digest is downloaded again). The node engine compiles it to machine code
// once per content into wazero's compilation cache on disk
// (<StateDir>/wasm/cache/compiled), so that a sandbox only loads it.
//
// # Sandbox
//
// Each run of an instance is a process: the program itself (Config.Exec,
// thicket-node) started with the hidden argument ChildCommand, whose main
// calls RunChild. It runs in its own session (setsid) and its own cgroup,
// <CgroupParent>/<key> (cgroup v2, or the cpu, cpuacct, memory and pids
// hierarchies of v1), with cpu.max from the SLA's CPU (MilliCPU over a 100
// ms period), memory.max from its memory plus SandboxOverheadMB (Config.OverheadMB) for the
// sandbox's own Go runtime and the module's machine code, no swap, and
// pids.max Config.PidsLimit. The sandbox's environment holds nothing of the
// node engine's; the module's file, arguments and environment reach it
// over a pipe (fd 3) once it is in its cgroup, never in argv; it says over
// a second pipe (fd 4) when _start runs or why the module could not start,
// so Start returns the error as before. A busy loop thus costs the node
// only the instance's CPU share: the engine's reports go on.
//
// An instance runs its module's _start with argv = [file name of the URL
// path] + spec.Cmd, the environment spec.Environment (KEY=value), the real
// clocks, crypto/rand as its random source, no stdin, no files and no
// sockets; stdout and stderr are appended to <StateDir>/wasm/logs/<key>.log.
// Its linear memory is limited to spec.Resources.MemoryMB MiB (none if 0):
// a memory.grow past the limit fails, which most languages turn into an
// out-of-memory exit, and the instance's Detail then names the limit; the
// cgroup's limit backs it (a sandbox the kernel kills for memory is FAILED
// with a Detail that says so). A module that returns from _start, or calls
// proc_exit(0), is COMPLETED; one that calls proc_exit(n), n ≠ 0, is FAILED
// with exit code n; one that traps is FAILED with exit code 134 (as for an
// abort) and the trap in Detail. The sandbox writes that end into
// <StateDir>/wasm/instances/<key>/exit.json.
//
// # Adoption
//
// A sandbox outlives the node engine: Close leaves modules running. Each
// instance has a record (<StateDir>/wasm/instances/<key>/instance.json:
// spec, pid, cgroup, start time); a new Runtime over the same state
// adopts every sandbox still in its cgroup and watches it (pidfd), and
// lists the ones that ended meanwhile as exited, as the containerd runtime
// adopts tasks.
//
// # Usage
//
// Usage reads the sandbox's cgroup: CPU time (as a share of one core
// between two calls) and the working set, as for containers.
package wasm

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/node_engine/internal/cgroup"
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
	// DefaultPidsLimit bounds a sandbox's processes and threads: the Go
	// runtime of a sandbox uses about ten.
	DefaultPidsLimit = 64
	// DefaultStopGrace is how long Remove waits after SIGTERM before it
	// kills a sandbox.
	DefaultStopGrace = 2 * time.Second
	// DefaultStartTimeout bounds how long Start waits for a sandbox to run
	// its module.
	DefaultStartTimeout = time.Minute
	// SandboxOverheadMB is added to an instance's memory for its cgroup's
	// limit: the sandbox's own Go runtime and the module's machine code.
	// The module's linear memory alone is held to memory_mb exactly.
	SandboxOverheadMB = 64
	// stopWait bounds how long Remove waits for a killed sandbox to end.
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
	// Exec is the program run as a sandbox with the arguments ExecArgs and
	// ChildCommand: this process's own executable if empty. An emulated
	// node (a foreign architecture under qemu-user without binfmt) gives
	// the emulator here and its own binary in ExecArgs.
	Exec     string
	ExecArgs []string
	// CgroupParent is the cgroup (relative to the hierarchies' roots)
	// under which each sandbox gets one of its own: if empty,
	// thicket-wasm/<node name>-<8 hex digits of the state directory's
	// SHA-256>, so that nodes sharing a host do not mix.
	CgroupParent string
	// PidsLimit bounds each sandbox's processes and threads
	// (DefaultPidsLimit if zero or less).
	PidsLimit int64
	// StopGrace is the time between SIGTERM and SIGKILL in Remove
	// (DefaultStopGrace if zero or less).
	StopGrace time.Duration
	// StartTimeout bounds the wait for a sandbox to run its module
	// (DefaultStartTimeout if zero or less).
	StartTimeout time.Duration
	// OverheadMB is added to an instance's memory for its sandbox's
	// cgroup limit (SandboxOverheadMB if zero or less).
	OverheadMB int64
}

// Runtime runs instances as WebAssembly modules in sandbox processes. It
// implements runtimes.Runtime. Its methods are safe for concurrent use;
// Start and Remove of the same instance are serialised.
type Runtime struct {
	cfg      Config
	log      *slog.Logger
	cacheDir string // downloaded modules
	logDir   string
	instDir  string // one directory per instance: its record and exit
	// compDir is wazero's compilation cache on disk.
	compDir string

	// cgroups is this host's cgroup layout; nil (and cgroupErr why) when
	// none can be used: then no module starts.
	cgroups   *cgroup.Host
	cgroupErr error

	events chan runtimes.State

	// ctx is cancelled by Close: the watchers of adopted sandboxes end.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // watchers and the log trimmer

	instances keyed.Mutex // per instance key: Start and Remove
	fetches   keyed.Mutex // per module cache file (one per URL without fragment)
	compiles  keyed.Mutex // per module content digest

	mu     sync.Mutex
	closed bool
	insts  map[string]*instance
	// compiled holds the digests this runtime compiled into the cache.
	compiled map[string]bool

	// counters, for tests and diagnostics (under mu)
	downloads    int
	compilations int
}

var _ runtimes.Runtime = (*Runtime)(nil)

// New returns a wasm runtime keeping its cache, logs and instance records
// under cfg.StateDir; it adopts the sandboxes an earlier runtime left
// running there (see the package documentation).
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
	if cfg.PidsLimit <= 0 {
		cfg.PidsLimit = DefaultPidsLimit
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	if cfg.OverheadMB <= 0 {
		cfg.OverheadMB = SandboxOverheadMB
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.Exec == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("wasm runtime: the sandbox program: %w", err)
		}
		cfg.Exec = exe
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "thicket-wasm/" + runtimes.FileName(cfg.NodeName) + "-" + fetch.SHA256([]byte(cfg.StateDir))[:8]
	}
	base := filepath.Join(cfg.StateDir, "wasm")
	cacheDir := filepath.Join(base, "cache", "modules")
	logDir := filepath.Join(base, "logs")
	instDir := filepath.Join(base, "instances")
	for _, d := range []string{cacheDir, logDir, instDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("wasm runtime: %w", err)
		}
	}
	bctx, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		cfg:      cfg,
		log:      log.With("runtime", Virtualization),
		cacheDir: cacheDir,
		logDir:   logDir,
		instDir:  instDir,
		compDir:  filepath.Join(base, "cache", "compiled"),
		events:   make(chan runtimes.State, runtimes.EventBuffer),
		ctx:      bctx,
		cancel:   cancel,
		insts:    map[string]*instance{},
		compiled: map[string]bool{},
	}
	// Under "ip netns exec" (a fresh /sys) the hierarchies are mounted
	// again, privately, under the state directory.
	r.cgroups, r.cgroupErr = cgroup.DetectOrMount(filepath.Join(base, "cgroup"))
	if r.cgroupErr != nil {
		r.log.Warn("no cgroups: wasm modules cannot run here", "err", r.cgroupErr)
	}
	r.load()
	runtimes.KeepLogsBounded(bctx, &r.wg, logDir, cfg.LogMaxBytes, r.log)
	return r, nil
}

// Virtualization implements runtimes.Runtime.
func (r *Runtime) Virtualization() string { return Virtualization }

// Available reports whether modules can run here: cgroups to confine
// them, and writable cache and log directories (the runtime itself is pure
// Go and always there).
func (r *Runtime) Available(ctx context.Context) error {
	if r.cgroups == nil {
		return fmt.Errorf("wasm runtime: no cgroups to confine modules: %w", r.cgroupErr)
	}
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

// Close stops watching the sandboxes, which go on running (a new runtime
// over the same state adopts them), and closes Events. No events are sent
// after it.
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
	r.mu.Lock()
	close(r.events)
	r.mu.Unlock()
	return nil
}
