package wasm

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// TrapExitCode is the exit code of an instance whose module trapped (as a
// process that aborts: 128 + SIGABRT).
const TrapExitCode = 134

// maxDetail bounds an instance's Detail.
const maxDetail = 1024

// instance is one instance this runtime holds, running or exited.
type instance struct {
	spec    wire.InstanceSpec
	mod     *compiledModule // a reference held until the instance is forgotten
	src     moduleSource
	logPath string

	// Under Runtime.mu:
	state    runtimes.State
	run      *run // the current or last run; nil before the first
	removed  bool // Remove took it out of the map
	orphaned bool // removed while its run had not ended: the run releases it
}

// run is one execution of an instance's module.
type run struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the module has ended and been closed
	mem    *linearMemory

	// Under Runtime.mu:
	running  bool
	stopping bool // stopped by Remove, a replacing Start or Close: no event
}

// Start runs the instance's module.
//
//   - No instance yet: the module is fetched and compiled unless cached,
//     instantiated, and its _start runs (a fresh log file).
//   - The instance exists with the same spec: a running one is left alone
//     (Start is idempotent); an exited one runs again (a restart, the log
//     is appended to), without fetching or compiling anything.
//   - The instance exists with another spec: it is stopped and replaced.
//
// Start returns once _start runs, or the error that kept it from running
// (bad URL, download, digest, size, compilation, instantiation, memory
// limit below the module's minimum).
func (r *Runtime) Start(ctx context.Context, spec wire.InstanceSpec) error {
	if spec.Key == "" {
		return errors.New("wasm runtime: start: instance spec has no key")
	}
	unlock := r.instances.Lock(spec.Key)
	defer unlock()

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("wasm runtime: start %s: runtime closed", spec.Key)
	}
	inst := r.insts[spec.Key]
	r.mu.Unlock()

	if inst != nil {
		if wire.SameSpec(inst.spec, spec) {
			r.mu.Lock()
			running := inst.run != nil && inst.run.running
			r.mu.Unlock()
			if running {
				return nil
			}
			if err := r.startRun(inst, false); err != nil {
				r.mu.Lock()
				inst.state.Status, inst.state.Detail = wire.StatusFailed, truncate(err.Error())
				inst.state.ExitCode, inst.state.ExitedAt = 0, time.Now().UTC()
				r.mu.Unlock()
				return fmt.Errorf("wasm runtime: start %s: %w", spec.Key, err)
			}
			return nil
		}
		r.log.Info("instance spec changed; replacing it", "instance", spec.Key)
		r.remove(ctx, inst)
	}

	if _, err := parseEnv(spec.Environment); err != nil {
		return fmt.Errorf("wasm runtime: start %s: %w", spec.Key, err)
	}
	mod, src, err := r.acquire(ctx, spec.Code)
	if err != nil {
		return fmt.Errorf("wasm runtime: start %s: %w", spec.Key, err)
	}
	inst = &instance{
		spec:    spec,
		mod:     mod,
		src:     src,
		logPath: r.logPath(spec.Key),
		state:   runtimes.State{Key: spec.Key, Status: wire.StatusCreating, Spec: spec},
	}
	if err := r.startRun(inst, true); err != nil {
		r.mu.Lock()
		r.release(mod)
		r.mu.Unlock()
		return fmt.Errorf("wasm runtime: start %s: %w", spec.Key, err)
	}
	return nil
}

// startRun instantiates inst's module and runs its _start in a goroutine;
// a fresh run truncates the log. On success inst is in the map and
// RUNNING.
func (r *Runtime) startRun(inst *instance, fresh bool) error {
	spec := inst.spec
	env, err := parseEnv(spec.Environment)
	if err != nil {
		return err
	}
	var limit uint64
	if mb := spec.Resources.MemoryMB; mb > 0 {
		limit = uint64(mb) << 20
	}

	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if fresh {
		flags |= os.O_TRUNC
		if err := runtimes.RemoveLog(inst.logPath); err != nil { // and its rotated part
			return fmt.Errorf("log: %w", err)
		}
	}
	logFile, err := os.OpenFile(inst.logPath, flags, 0o600)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		logFile.Close()
		return errors.New("runtime closed")
	}
	r.runSeq++
	seq := r.runSeq
	ctx, cancel := context.WithCancel(r.ctx)
	r.mu.Unlock()

	mem := &linearMemory{limit: limit}
	out := runtimes.NewLogRecords(logFile) // timestamped lines, streams marked
	stdout, stderr := out.Stream(wire.StreamStdout), out.Stream(wire.StreamStderr)
	cfg := wazero.NewModuleConfig().
		// A unique name: a module that is still ending never blocks the
		// next run of its instance.
		WithName(spec.Key + "#" + strconv.FormatUint(seq, 10)).
		WithArgs(append([]string{inst.src.name}, spec.Cmd...)...).
		WithStdout(stdout).
		WithStderr(stderr).
		WithStartFunctions(). // _start runs in the goroutine below
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(sleeper(ctx)).
		WithRandSource(crand.Reader)
	for _, kv := range env {
		cfg = cfg.WithEnv(kv[0], kv[1])
	}
	fail := func(err error) error {
		cancel()
		logFile.Close()
		return err
	}
	wz, err := r.engine() // made when inst.mod was compiled
	if err != nil {
		return fail(err)
	}
	mod, err := wz.InstantiateModule(experimental.WithMemoryAllocator(ctx, mem), inst.mod.cm, cfg)
	if err != nil {
		return fail(fmt.Errorf("instantiate module %s: %w", inst.src.URL, err))
	}
	if limit > 0 && mem.Size() > limit {
		_ = mod.Close(context.Background())
		return fail(fmt.Errorf("module %s needs %s of memory at start, over the memory limit of %s",
			inst.src.URL, mib(mem.Size()), mib(limit)))
	}
	start := mod.ExportedFunction("_start")
	if start == nil { // checked at compilation; kept for safety
		_ = mod.Close(context.Background())
		return fail(fmt.Errorf("module %s exports no _start", inst.src.URL))
	}

	rn := &run{cancel: cancel, done: make(chan struct{}), mem: mem, running: true}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = mod.Close(context.Background())
		return fail(errors.New("runtime closed"))
	}
	inst.run = rn
	inst.state = runtimes.State{
		Key:       spec.Key,
		Status:    wire.StatusRunning,
		Spec:      spec,
		StartedAt: time.Now().UTC(),
	}
	r.insts[spec.Key] = inst
	r.wg.Add(1)
	r.mu.Unlock()

	go func() {
		defer r.wg.Done()
		defer close(rn.done)
		_, err := start.Call(ctx)
		_ = mod.Close(context.Background())
		_, _ = stdout.Close(), stderr.Close() // their unfinished last lines
		logFile.Close()
		cancel()
		r.exited(inst, rn, err)
	}()
	return nil
}

// exited records the end of run rn of inst and, unless it was stopped,
// delivers it on Events.
func (r *Runtime) exited(inst *instance, rn *run, err error) {
	code, status, detail := exitStatus(err, rn.mem)
	r.mu.Lock()
	defer r.mu.Unlock()
	rn.running = false
	if inst.orphaned {
		// Removed while still running: the run holds the last use of the
		// module.
		inst.orphaned = false
		r.release(inst.mod)
	}
	if rn.stopping || inst.removed || inst.run != rn {
		return
	}
	inst.state.Status, inst.state.ExitCode, inst.state.Detail = status, code, detail
	inst.state.ExitedAt = time.Now().UTC()
	if r.closed {
		return
	}
	select {
	case r.events <- inst.state:
	default:
		r.log.Warn("events buffer full; dropping an exit", "instance", inst.spec.Key, "status", status)
	}
}

// exitStatus classifies how a module's _start ended.
func exitStatus(err error, mem *linearMemory) (code int, status, detail string) {
	var exitErr *sys.ExitError
	switch {
	case err == nil:
		code, detail = 0, "exited with code 0"
	case errors.As(err, &exitErr):
		switch c := exitErr.ExitCode(); c {
		case sys.ExitCodeContextCanceled, sys.ExitCodeDeadlineExceeded:
			return TrapExitCode, wire.StatusFailed, "stopped"
		default:
			code = int(int32(c))
			detail = "exited with code " + strconv.Itoa(code)
		}
	default:
		code, detail = TrapExitCode, "trap: "+err.Error()
	}
	if code == 0 {
		return 0, wire.StatusCompleted, detail
	}
	if refused := mem.Refused(); refused > 0 {
		detail += fmt.Sprintf("; out of memory: the module tried to grow its memory to %s, over the memory limit of %s",
			mib(refused), mib(mem.limit))
	}
	return code, wire.StatusFailed, truncate(detail)
}

// Remove stops the instance (its module is cancelled and waited for, at
// most a few seconds) and deletes its log. Removing an unknown key is not
// an error. No event is sent.
func (r *Runtime) Remove(ctx context.Context, key string) error {
	unlock := r.instances.Lock(key)
	defer unlock()
	r.mu.Lock()
	inst := r.insts[key]
	r.mu.Unlock()
	if inst == nil {
		return nil
	}
	r.remove(ctx, inst)
	return nil
}

// remove stops inst, forgets it and deletes its log. Caller holds the
// instance's lock.
func (r *Runtime) remove(ctx context.Context, inst *instance) {
	r.mu.Lock()
	rn := inst.run
	if rn != nil {
		rn.stopping = true
	}
	r.mu.Unlock()
	ended := true
	if rn != nil {
		rn.cancel()
		select {
		case <-rn.done:
		case <-time.After(stopWait):
			ended = false
			r.log.Warn("module did not stop in time; forgetting it anyway", "instance", inst.spec.Key, "waited", stopWait)
		case <-ctx.Done():
			ended = false
			r.log.Warn("module not stopped yet; forgetting it anyway", "instance", inst.spec.Key, "err", ctx.Err())
		}
	}
	r.mu.Lock()
	if r.insts[inst.spec.Key] == inst {
		delete(r.insts, inst.spec.Key)
	}
	inst.removed = true
	if ended || !rn.running {
		r.release(inst.mod)
	} else {
		inst.orphaned = true
	}
	r.mu.Unlock()
	if err := runtimes.RemoveLog(inst.logPath); err != nil {
		r.log.Warn("remove log", "instance", inst.spec.Key, "err", err)
	}
}

// List returns every instance this runtime holds, running or exited,
// sorted by key. After a restart of the node engine it is empty: modules
// do not survive the process.
func (r *Runtime) List(ctx context.Context) ([]runtimes.State, error) {
	r.mu.Lock()
	out := make([]runtimes.State, 0, len(r.insts))
	for _, inst := range r.insts {
		out = append(out, inst.state)
	}
	r.mu.Unlock()
	sortStates(out)
	return out, nil
}

// Logs returns at most maxBytes of the end of the instance's output,
// starting at a line boundary when cut.
func (r *Runtime) Logs(ctx context.Context, key string, maxBytes int) (string, error) {
	r.mu.Lock()
	inst := r.insts[key]
	r.mu.Unlock()
	if inst == nil {
		return "", fmt.Errorf("logs %s: %w", key, runtimes.ErrNotFound)
	}
	if maxBytes <= 0 {
		return "", nil
	}
	logs, err := runtimes.LogTail(inst.logPath, maxBytes)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("logs %s: %w", key, err)
	}
	return logs, nil
}

// Usage returns the size of the instance's linear memory as MemoryMB
// (rounded up) and CPUPercent 0: wazero does not account CPU per module.
// An exited instance has zero usage.
func (r *Runtime) Usage(ctx context.Context, key string) (runtimes.Usage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	inst := r.insts[key]
	if inst == nil {
		return runtimes.Usage{}, fmt.Errorf("usage %s: %w", key, runtimes.ErrNotFound)
	}
	if inst.run == nil || !inst.run.running {
		return runtimes.Usage{}, nil
	}
	return runtimes.Usage{MemoryMB: int64((inst.run.mem.Size() + 1<<20 - 1) >> 20)}, nil
}

// logPath is the log file of instance key.
func (r *Runtime) logPath(key string) string {
	return filepath.Join(r.logDir, runtimes.FileName(key)+".log")
}

// parseEnv splits KEY=value entries.
func parseEnv(environment []string) ([][2]string, error) {
	env := make([][2]string, 0, len(environment))
	for i, kv := range environment {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("environment[%d] %q: want KEY=value", i, kv)
		}
		env = append(env, [2]string{k, v})
	}
	return env, nil
}

// sleeper is a WASI sleep (poll_oneoff on clocks) that ends early when ctx
// is done, so that a sleeping module stops at once.
func sleeper(ctx context.Context) sys.Nanosleep {
	return func(ns int64) {
		t := time.NewTimer(time.Duration(ns))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

func truncate(s string) string {
	if len(s) > maxDetail {
		return s[:maxDetail]
	}
	return s
}

// mib formats a byte count in MiB.
func mib(b uint64) string {
	if b%(1<<20) == 0 {
		return strconv.FormatUint(b>>20, 10) + " MiB"
	}
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB"
}

func sortStates(s []runtimes.State) {
	sort.Slice(s, func(i, j int) bool { return s[i].Key < s[j].Key })
}
