package wasm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero/sys"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/internal/cgroup"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// TrapExitCode is the exit code of an instance whose module trapped (as a
// process that aborts: 128 + SIGABRT).
const TrapExitCode = 134

// maxDetail bounds an instance's Detail.
const maxDetail = 1024

// Files in an instance's directory (<StateDir>/wasm/instances/<key>).
const (
	recordFile = "instance.json" // record: what the engine needs to adopt it
	exitFile   = "exit.json"     // ExitRecord, written by the sandbox
)

// record is what a runtime keeps on disk of an instance, so that the next
// runtime (after a node engine restart) adopts it.
type record struct {
	Spec      wire.InstanceSpec `json:"spec"`
	Pid       int               `json:"pid"`
	Cgroup    string            `json:"cgroup"`
	StartedAt time.Time         `json:"started_at"`
}

// instance is one instance this runtime holds, running or exited.
type instance struct {
	spec    wire.InstanceSpec
	src     moduleSource
	dir     string
	logPath string

	// Under Runtime.mu:
	state   runtimes.State
	run     *run // the current or last run; nil before the first
	removed bool // Remove took it out of the map
}

// run is one sandbox process of an instance.
type run struct {
	pid   int
	group *cgroup.Group
	done  chan struct{} // closed when the process has ended and its end is recorded

	// Under Runtime.mu:
	running  bool
	stopping bool // stopped by Remove or a replacing Start: no event
	// the previous CPU reading, for Usage
	cpu    time.Duration
	cpuAt  time.Time
	hasCPU bool
}

// Start runs the instance's module in a sandbox process.
//
//   - No instance yet: the module is fetched unless cached, compiled into
//     the disk cache unless compiled, and a sandbox process runs it (a
//     fresh log file).
//   - The instance exists with the same spec: a running one is left alone
//     (Start is idempotent); an exited one runs again (a restart, the log
//     is appended to).
//   - The instance exists with another spec: it is stopped and replaced.
//
// Start returns once _start runs, or the error that kept it from running
// (bad URL, download, digest, size, compilation, instantiation, memory
// limit below the module's minimum, no cgroup).
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
			if err := r.startRun(ctx, inst, false); err != nil {
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
	src, err := parseCode(spec.Code)
	if err != nil {
		return fmt.Errorf("wasm runtime: start %s: %w", spec.Key, err)
	}
	name := runtimes.FileName(spec.Key)
	inst = &instance{
		spec:    spec,
		src:     src,
		dir:     filepath.Join(r.instDir, name),
		logPath: r.logPath(spec.Key),
		state:   runtimes.State{Key: spec.Key, Status: wire.StatusCreating, Spec: spec},
	}
	if err := r.startRun(ctx, inst, true); err != nil {
		_ = os.RemoveAll(inst.dir)
		_ = runtimes.RemoveLog(inst.logPath)
		return fmt.Errorf("wasm runtime: start %s: %w", spec.Key, err)
	}
	return nil
}

// limits are the cgroup limits of spec's sandbox: the SLA's CPU, its
// memory plus Config.OverheadMB, and the pids limit.
func (r *Runtime) limits(spec wire.InstanceSpec) cgroup.Limits {
	l := cgroup.Limits{MilliCPU: spec.Resources.MilliCPU, Pids: r.cfg.PidsLimit}
	if mb := spec.Resources.MemoryMB; mb > 0 {
		l.MemoryBytes = (mb + r.cfg.OverheadMB) << 20
	}
	return l
}

// startRun starts a sandbox process for inst in a fresh cgroup and waits
// until its module runs; a fresh run truncates the log. On success inst is
// in the map and RUNNING.
func (r *Runtime) startRun(ctx context.Context, inst *instance, fresh bool) error {
	spec := inst.spec
	if r.cgroups == nil {
		return fmt.Errorf("no cgroups to confine the module: %w", r.cgroupErr)
	}
	file, digest, err := r.acquire(ctx, inst.src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(inst.dir, 0o700); err != nil {
		return fmt.Errorf("instance directory: %w", err)
	}
	if err := os.Remove(filepath.Join(inst.dir, exitFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("instance directory: %w", err)
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
	defer logFile.Close()

	group, err := r.cgroups.Create(r.cgroupPath(spec.Key), r.limits(spec))
	if err != nil {
		return err
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		_ = group.Delete()
		return err
	}
	defer cfgW.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		_ = group.Delete()
		return err
	}
	defer readyR.Close()

	cmd := exec.Command(r.cfg.Exec, append(slices.Clone(r.cfg.ExecArgs), ChildCommand)...)
	cmd.Dir = inst.dir
	cmd.Env = childEnv(spec)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{cfgR, readyW} // fds 3 and 4
	// Its own session and process group: it outlives this process (a
	// restarted engine adopts it) and no terminal signal reaches it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	cfgR.Close()
	readyW.Close()
	if err != nil {
		_ = group.Delete()
		return fmt.Errorf("start the sandbox process %s: %w", r.cfg.Exec, err)
	}
	rn := &run{pid: cmd.Process.Pid, group: group, done: make(chan struct{})}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	abort := func(err error) error {
		_ = group.Kill()
		<-waited
		_ = group.Delete()
		return err
	}
	// The module's config goes only to a process inside its cgroup: until
	// then the sandbox waits for it.
	if err := group.Add(rn.pid); err != nil {
		return abort(err)
	}
	started := time.Now().UTC()
	rec := record{Spec: spec, Pid: rn.pid, Cgroup: group.Path(), StartedAt: started}
	if err := writeJSON(filepath.Join(inst.dir, recordFile), rec); err != nil {
		return abort(fmt.Errorf("instance record: %w", err))
	}
	var limit uint64
	if mb := spec.Resources.MemoryMB; mb > 0 {
		limit = uint64(mb) << 20
	}
	err = json.NewEncoder(cfgW).Encode(ChildConfig{
		Module: file, Digest: digest, CompileCache: r.compDir,
		Name: inst.src.name, Args: spec.Cmd, Env: spec.Environment,
		MemoryLimit: limit, ExitFile: filepath.Join(inst.dir, exitFile),
	})
	cfgW.Close()
	if err != nil {
		return abort(fmt.Errorf("send the module's config to the sandbox: %w", err))
	}
	deadline := time.Now().Add(r.cfg.StartTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = readyR.SetReadDeadline(deadline)
	line, rerr := bufio.NewReader(readyR).ReadString('\n')
	if line = strings.TrimSpace(line); line != "ok" {
		switch {
		case line != "":
			err = errors.New(line)
		case errors.Is(rerr, os.ErrDeadlineExceeded):
			err = errors.New("the module did not start in time")
		default:
			select {
			case werr := <-waited:
				waited <- werr
				err = fmt.Errorf("the sandbox process ended before the module ran: %v%s", werr, r.oomNote(group, spec))
			case <-time.After(time.Second):
				err = fmt.Errorf("the sandbox process closed its ready pipe: %v", rerr)
			}
		}
		return abort(fmt.Errorf("module %s: %w", inst.src.URL, err))
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return abort(errors.New("runtime closed"))
	}
	rn.running = true
	inst.run = rn
	inst.state = runtimes.State{Key: spec.Key, Status: wire.StatusRunning, Spec: spec, StartedAt: started}
	r.insts[spec.Key] = inst
	r.mu.Unlock()
	go func() {
		werr := <-waited
		r.ended(inst, rn, werr)
	}()
	return nil
}

// childEnv is the sandbox process's own environment: nothing of the node
// engine's (which may hold secrets) but GOMAXPROCS fitted to its CPU
// limit. The module's environment travels in its config.
func childEnv(spec wire.InstanceSpec) []string {
	if m := spec.Resources.MilliCPU; m > 0 {
		return []string{"GOMAXPROCS=" + strconv.FormatInt(max(1, (m+999)/1000), 10)}
	}
	return []string{}
}

// ended records the end of run rn of inst, waited for as werr (nil for an
// adopted process, which is not this process's child), cleans its cgroup
// up and, unless it was stopped, delivers it on Events. After Close it
// does nothing: the next runtime adopts what is left.
func (r *Runtime) ended(inst *instance, rn *run, werr error) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		close(rn.done)
		return
	}
	st := r.exitState(inst, rn.group, werr)
	_ = rn.group.Kill() // anything the module's process left
	if err := rn.group.Delete(); err != nil {
		r.log.Warn("remove a sandbox's cgroup", "instance", inst.spec.Key, "err", err)
	}
	rn.group.DeleteParent(1) // the node's group, when this was its last sandbox
	r.mu.Lock()
	defer r.mu.Unlock()
	defer close(rn.done)
	rn.running = false
	if rn.stopping || inst.removed || inst.run != rn {
		return
	}
	inst.state.Status, inst.state.ExitCode, inst.state.Detail = st.Status, st.ExitCode, st.Detail
	inst.state.ExitedAt = time.Now().UTC()
	if r.closed {
		return
	}
	select {
	case r.events <- inst.state:
	default:
		r.log.Warn("events buffer full; dropping an exit", "instance", inst.spec.Key, "status", st.Status)
	}
}

// exitState is how a sandbox ended: its exit record, else what its wait
// status and its cgroup say (killed by the kernel for memory, a signal).
func (r *Runtime) exitState(inst *instance, group *cgroup.Group, werr error) ExitRecord {
	var rec ExitRecord
	if err := readJSON(filepath.Join(inst.dir, exitFile), &rec); err == nil && rec.Status != "" {
		return rec
	}
	rec = ExitRecord{Status: wire.StatusFailed, ExitCode: 137, Detail: "the sandbox process ended without recording an exit"}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			rec.ExitCode = 128 + int(ws.Signal())
			rec.Detail = "killed by signal " + ws.Signal().String()
		} else {
			rec.ExitCode = ee.ExitCode()
			rec.Detail = "the sandbox process exited with code " + strconv.Itoa(rec.ExitCode)
		}
	}
	rec.Detail = truncate(rec.Detail + r.oomNote(group, inst.spec))
	return rec
}

// oomNote says, when the kernel killed a process of group for memory, at
// which limit.
func (r *Runtime) oomNote(group *cgroup.Group, spec wire.InstanceSpec) string {
	s, err := group.Stat()
	if err != nil || s.OOMKills == 0 {
		return ""
	}
	return fmt.Sprintf("; out of memory: killed by the kernel at the sandbox's memory limit of %d MiB (memory_mb %d + %d MiB for the sandbox)",
		spec.Resources.MemoryMB+r.cfg.OverheadMB, spec.Resources.MemoryMB, r.cfg.OverheadMB)
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

// Remove stops the instance (SIGTERM to its sandbox, SIGKILL to its cgroup
// after StopGrace) and deletes its log and files. Removing an unknown key
// is not an error. No event is sent.
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

// remove stops inst, forgets it and deletes its files. Caller holds the
// instance's lock.
func (r *Runtime) remove(ctx context.Context, inst *instance) {
	r.mu.Lock()
	rn := inst.run
	running := rn != nil && rn.running
	if rn != nil {
		rn.stopping = true
	}
	r.mu.Unlock()
	if running {
		_ = syscall.Kill(rn.pid, syscall.SIGTERM)
		select {
		case <-rn.done:
		case <-time.After(r.cfg.StopGrace):
			if err := rn.group.Kill(); err != nil {
				r.log.Warn("kill a sandbox", "instance", inst.spec.Key, "err", err)
			}
			select {
			case <-rn.done:
			case <-time.After(stopWait):
				r.log.Warn("sandbox did not end in time; forgetting it anyway", "instance", inst.spec.Key, "waited", stopWait)
			case <-ctx.Done():
			}
		case <-ctx.Done():
			r.log.Warn("sandbox not stopped yet; forgetting it anyway", "instance", inst.spec.Key, "err", ctx.Err())
		}
	}
	r.mu.Lock()
	if r.insts[inst.spec.Key] == inst {
		delete(r.insts, inst.spec.Key)
	}
	inst.removed = true
	r.mu.Unlock()
	if err := os.RemoveAll(inst.dir); err != nil {
		r.log.Warn("remove instance files", "instance", inst.spec.Key, "err", err)
	}
	if err := runtimes.RemoveLog(inst.logPath); err != nil {
		r.log.Warn("remove log", "instance", inst.spec.Key, "err", err)
	}
}

// List returns every instance this runtime holds, running or exited,
// sorted by key: those it started and those it adopted.
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

// Usage returns the sandbox's use from its cgroup: CPUPercent is the CPU
// time used since the previous Usage call divided by the wall time between
// them (0 on the first call), MemoryMB the working set (memory use minus
// inactive page cache, rounded up), the module's linear memory and the
// sandbox's own runtime together. An exited instance has zero usage.
func (r *Runtime) Usage(ctx context.Context, key string) (runtimes.Usage, error) {
	r.mu.Lock()
	inst := r.insts[key]
	var rn *run
	if inst != nil && inst.run != nil && inst.run.running {
		rn = inst.run
	}
	r.mu.Unlock()
	if inst == nil {
		return runtimes.Usage{}, fmt.Errorf("usage %s: %w", key, runtimes.ErrNotFound)
	}
	if rn == nil {
		return runtimes.Usage{}, nil
	}
	s, err := rn.group.Stat()
	if err != nil {
		r.mu.Lock()
		running := rn.running
		r.mu.Unlock()
		if !running {
			return runtimes.Usage{}, nil
		}
		return runtimes.Usage{}, fmt.Errorf("usage %s: %w", key, err)
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var pct float64
	if rn.hasCPU && now.After(rn.cpuAt) && s.CPU >= rn.cpu {
		pct = float64(s.CPU-rn.cpu) / float64(now.Sub(rn.cpuAt)) * 100
	}
	rn.cpu, rn.cpuAt, rn.hasCPU = s.CPU, now, true
	return runtimes.Usage{CPUPercent: pct, MemoryMB: int64((s.WorkingSet + 1<<20 - 1) >> 20)}, nil
}

// logPath is the log file of instance key.
func (r *Runtime) logPath(key string) string {
	return filepath.Join(r.logDir, runtimes.FileName(key)+".log")
}

// cgroupPath is the cgroup of instance key's sandbox.
func (r *Runtime) cgroupPath(key string) string {
	return r.cfg.CgroupParent + "/" + runtimes.FileName(key)
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

func writeJSON(file string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return runtimes.WriteFileAtomic(file, data)
}

func readJSON(file string, v any) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
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
