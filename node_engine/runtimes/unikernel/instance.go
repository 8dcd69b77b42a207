package unikernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// Files of an instance directory.
const (
	fileRecord     = "instance.json"
	fileConsole    = "console.log"
	fileQemuLog    = "qemu.log" // qemu's own output (errors)
	fileQemuPid    = "qemu.pid"
	fileSupervisor = "supervisor.pid"
	fileExit       = "exit"     // qemu's exit status, by the supervisor
	fileReason     = "shutdown" // reason of qemu's SHUTDOWN event, if seen
	sockQMP        = "qmp.sock"
	sockEvents     = "events.sock"
)

// maxDetail bounds an instance's Detail.
const maxDetail = 1024

// record is what an instance directory remembers of its instance.
type record struct {
	Spec      wire.InstanceSpec `json:"spec"`
	StartedAt time.Time         `json:"started_at"`
}

// instance is one instance this runtime holds, running or exited.
type instance struct {
	key  string
	dir  string
	spec wire.InstanceSpec

	// Under Runtime.mu:
	state   runtimes.State
	run     *vmRun // the current or last run; nil if none
	removed bool
	cpu     cpuSample
}

// vmRun is one qemu process of an instance.
type vmRun struct {
	supPid  int // the supervisor (/bin/sh)
	qemuPid int
	marker  string        // in the command line of both: the pid file path
	done    chan struct{} // closed when qemu and its supervisor are gone
	evDone  chan struct{} // closed when the QMP event watcher has ended
	watched atomic.Bool   // the event watcher was started

	// Under Runtime.mu:
	stopping bool // stopped by Remove or a replacing Start: no event
	exited   bool
	final    runtimes.State
}

type cpuSample struct {
	ticks uint64
	at    time.Time
}

// Start boots the instance's virtual machine.
//
//   - No instance yet: the image is fetched unless cached, the network (if
//     any) set up, and qemu started with a fresh console log.
//   - The instance exists with the same spec: a running one is left alone
//     (Start is idempotent); an exited one boots again (a restart; its
//     console log is appended to).
//   - The instance exists with another spec: it is removed and replaced.
//
// Start returns once qemu runs the machine (not once the guest has
// booted), or the error that kept it from running (bad URL, download,
// digest, size, archive, network, qemu's own error).
func (r *Runtime) Start(ctx context.Context, spec wire.InstanceSpec) error {
	if spec.Key == "" {
		return errors.New("unikernel runtime: start: instance spec has no key")
	}
	unlock := r.instances.Lock(spec.Key)
	defer unlock()

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("unikernel runtime: start %s: %w", spec.Key, errClosed)
	}
	inst := r.insts[spec.Key]
	r.mu.Unlock()

	if inst != nil {
		if wire.SameSpec(inst.spec, spec) {
			r.mu.Lock()
			running := inst.run != nil && !inst.run.exited
			r.mu.Unlock()
			if running {
				return nil
			}
			if err := r.launch(ctx, inst, false); err != nil {
				r.mu.Lock()
				inst.state.Status, inst.state.Detail = wire.StatusFailed, truncate(err.Error())
				inst.state.ExitCode, inst.state.ExitedAt = 0, time.Now().UTC()
				r.mu.Unlock()
				return fmt.Errorf("unikernel runtime: start %s: %w", spec.Key, err)
			}
			return nil
		}
		r.log.Info("instance spec changed; replacing it", "instance", spec.Key)
		if err := r.remove(ctx, inst); err != nil {
			return fmt.Errorf("unikernel runtime: start %s: replace: %w", spec.Key, err)
		}
	} else if err := r.removeLeftover(ctx, spec.Key); err != nil {
		return fmt.Errorf("unikernel runtime: start %s: %w", spec.Key, err)
	}

	if _, err := cmdlineWords(spec); err != nil {
		return fmt.Errorf("unikernel runtime: start %s: %w", spec.Key, err)
	}
	inst = &instance{
		key:   spec.Key,
		dir:   r.dirOf(spec.Key),
		spec:  spec,
		state: runtimes.State{Key: spec.Key, Status: wire.StatusCreating, Spec: spec},
	}
	if err := r.launch(ctx, inst, true); err != nil {
		if rerr := os.RemoveAll(inst.dir); rerr != nil {
			r.log.Warn("remove instance directory", "instance", spec.Key, "err", rerr)
		}
		return fmt.Errorf("unikernel runtime: start %s: %w", spec.Key, err)
	}
	return nil
}

// launch starts qemu for inst (a fresh instance, or a restart) and waits
// until it runs the machine. On success inst is in the map and RUNNING.
// Caller holds the instance's lock.
func (r *Runtime) launch(ctx context.Context, inst *instance, fresh bool) (err error) {
	spec := inst.spec
	img, err := r.image(ctx, spec.Code, spec.Arch)
	if err != nil {
		return err
	}
	if err := r.Available(ctx); err != nil {
		return err
	}
	if err := os.MkdirAll(inst.dir, 0o700); err != nil {
		return fmt.Errorf("instance directory: %w", err)
	}
	for _, f := range []string{fileExit, fileExit + ".tmp", fileReason, fileQemuPid, fileSupervisor, sockQMP, sockEvents} {
		if err := os.Remove(filepath.Join(inst.dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("instance directory: %w", err)
		}
	}
	logFlags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if fresh {
		logFlags |= os.O_TRUNC
	}
	for _, f := range []string{fileConsole, fileQemuLog} {
		fh, err := os.OpenFile(filepath.Join(inst.dir, f), logFlags, 0o600)
		if err != nil {
			return fmt.Errorf("instance directory: %w", err)
		}
		fh.Close()
	}
	rec := record{Spec: spec, StartedAt: time.Now().UTC()}
	recJSON, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("instance record: %w", err)
	}
	if err := runtimes.WriteFileAtomic(filepath.Join(inst.dir, fileRecord), recJSON); err != nil {
		return fmt.Errorf("instance directory: %w", err)
	}

	var (
		tap *os.File
		gn  *guestNet
	)
	nsPath := spec.Labels[runtimes.LabelNetNS]
	if nsPath != "" {
		f, g, err := setupNet(nsPath)
		if err != nil {
			return fmt.Errorf("network: %w", err)
		}
		tap, gn = f, &g
		defer func() {
			if err != nil {
				if terr := teardownNet(nsPath); terr != nil {
					r.log.Warn("tear down network", "instance", spec.Key, "err", terr)
				}
			}
		}()
	}
	cmdline, err := buildCmdline(img.cmdline, img.header, gn, spec)
	if err != nil {
		if tap != nil {
			tap.Close()
		}
		return err
	}
	args := r.qemuArgs(ctx, inst.dir, img, spec, cmdline, gn)
	qemuLog, err := os.OpenFile(filepath.Join(inst.dir, fileQemuLog), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		if tap != nil {
			tap.Close()
		}
		return fmt.Errorf("instance directory: %w", err)
	}
	// The serial console is qemu's stdout (-chardev stdio), a pipe to
	// the console's log writer.
	console, waitWriter, err := startConsoleWriter(r.cfg.LogWriter, filepath.Join(inst.dir, fileConsole), qemuLog)
	if err != nil {
		qemuLog.Close()
		if tap != nil {
			tap.Close()
		}
		return err
	}
	go waitWriter()
	cmd := exec.Command("/bin/sh", append([]string{"-c", supervisor, supervisorName, r.cfg.QemuBinary}, args...)...)
	cmd.Dir = inst.dir
	cmd.Stdout, cmd.Stderr = console, qemuLog
	if tap != nil {
		cmd.ExtraFiles = []*os.File{tap} // fd 3
	}
	// A session of its own: neither the engine's signals nor its death
	// reach the machine.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	qemuLog.Close()
	console.Close()
	if tap != nil {
		tap.Close()
	}
	if err != nil {
		return fmt.Errorf("start qemu: %w", err)
	}
	run := &vmRun{
		supPid: cmd.Process.Pid,
		marker: filepath.Join(inst.dir, fileQemuPid),
		done:   make(chan struct{}),
		evDone: make(chan struct{}),
	}
	if err := os.WriteFile(filepath.Join(inst.dir, fileSupervisor), []byte(strconv.Itoa(run.supPid)+"\n"), 0o600); err != nil {
		r.log.Warn("write supervisor pid", "instance", spec.Key, "err", err)
	}
	go func() {
		_ = cmd.Wait()
		r.finish(inst, run)
	}()
	t0 := time.Now()
	if err := r.waitReady(ctx, inst, run); err != nil {
		// qemu is in the supervisor's process group.
		_ = syscall.Kill(-run.supPid, syscall.SIGKILL)
		<-run.done
		return err
	}
	run.qemuPid = readPid(filepath.Join(inst.dir, fileQemuPid))
	run.watched.Store(true)
	go r.watchEvents(inst, run)

	r.mu.Lock()
	inst.run = run
	inst.state = runtimes.State{Key: spec.Key, Status: wire.StatusRunning, Spec: spec, StartedAt: rec.StartedAt}
	inst.cpu = cpuSample{}
	r.insts[spec.Key] = inst
	if run.exited { // ended between ready and now
		inst.state = run.final
		r.sendLocked(inst.state)
	}
	r.mu.Unlock()
	r.log.Info("started virtual machine", "instance", spec.Key, "pid", run.qemuPid, "kvm", r.KVM(),
		"network", gn != nil, "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// waitReady waits until qemu's monitor answers (the machine runs) or qemu
// ends.
func (r *Runtime) waitReady(ctx context.Context, inst *instance, run *vmRun) error {
	deadline := time.Now().Add(readyTimeout)
	sock := filepath.Join(inst.dir, sockQMP)
	for {
		select {
		case <-run.done:
			return fmt.Errorf("qemu exited at once: %s", r.qemuError(inst.dir))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if q, err := dialQMP(ctx, sock, 2*time.Second); err == nil {
			q.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("qemu did not start its machine within %v: %s", readyTimeout, r.qemuError(inst.dir))
		}
		select {
		case <-run.done:
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// qemuError is the end of qemu's own output.
func (r *Runtime) qemuError(dir string) string {
	s := logEnd(filepath.Join(dir, fileQemuLog), 512)
	if s == "" {
		return "no output"
	}
	return s
}

// finish records the end of run: its final state, and for the current run
// of an instance not being stopped, the instance's state and an event.
func (r *Runtime) finish(inst *instance, run *vmRun) {
	// The event watcher sees qemu's SHUTDOWN event before the socket
	// closes; give it a moment to record the reason.
	if run.watched.Load() {
		select {
		case <-run.evDone:
		case <-time.After(2 * time.Second):
		}
	}
	st := exitState(inst.dir)
	st.Key, st.Spec = inst.key, inst.spec
	r.mu.Lock()
	defer r.mu.Unlock()
	st.StartedAt = inst.state.StartedAt
	run.exited, run.final = true, st
	close(run.done)
	if inst.run != run || run.stopping || inst.removed {
		return
	}
	inst.state = st
	r.log.Info("virtual machine ended", "instance", inst.key, "status", st.Status, "detail", st.Detail)
	r.sendLocked(st)
}

// sendLocked delivers st on Events. Caller holds mu.
func (r *Runtime) sendLocked(st runtimes.State) {
	if r.closed {
		return
	}
	select {
	case r.events <- st:
	default:
		r.log.Warn("events buffer full; dropping an exit", "instance", st.Key, "status", st.Status)
	}
}

// exitState reads how the qemu of the instance in dir ended.
func exitState(dir string) runtimes.State {
	st := runtimes.State{ExitedAt: time.Now().UTC()}
	b, _ := os.ReadFile(filepath.Join(dir, fileReason))
	reason := strings.TrimSpace(string(b))
	exitFile := filepath.Join(dir, fileExit)
	b, err := os.ReadFile(exitFile)
	code, perr := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || perr != nil {
		if reason == "guest-shutdown" {
			st.Status, st.Detail = wire.StatusCompleted, "guest powered off"
			return st
		}
		st.Status, st.Detail = wire.StatusFailed, "qemu is gone; its exit status is unknown (supervisor gone)"
		if reason != "" {
			st.Detail += "; shutdown reason " + reason
		}
		return st
	}
	if fi, err := os.Stat(exitFile); err == nil {
		st.ExitedAt = fi.ModTime().UTC()
	}
	st.ExitCode = code
	switch {
	case code == 0 && (reason == "" || reason == "guest-shutdown"):
		st.Status, st.Detail = wire.StatusCompleted, "guest powered off"
		if reason == "" {
			st.Detail = "qemu exited with code 0"
		}
	case code == 0:
		st.Status = wire.StatusFailed
		switch reason {
		case "guest-reset":
			st.Detail = "guest reset (reboot, triple fault, or a panic without pvpanic); qemu ran with -no-reboot and exited with code 0"
		case "host-signal":
			st.Detail = "qemu was stopped by a signal"
		case "internal-error":
			st.Detail = "the accelerator stopped the machine with an internal error (with KVM, try Accel tcg)"
			if b, err := os.ReadFile(filepath.Join(dir, fileQemuLog)); err == nil {
				if first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n"); first != "" {
					st.Detail += ": " + first
				}
			}
		default:
			st.Detail = "qemu exited with code 0; shutdown reason " + reason
		}
	default:
		st.Status = wire.StatusFailed
		switch {
		case reason == "guest-panic" || code == 1 && reason == "":
			st.Detail = fmt.Sprintf("qemu exited with code %d", code)
			if reason == "guest-panic" {
				st.Detail += ": the guest panicked"
			}
		case code > 128 && code < 160:
			st.Detail = fmt.Sprintf("qemu was killed by signal %d", code-128)
		case code%2 == 1:
			st.Detail = fmt.Sprintf("qemu exited with code %d (isa-debug-exit value %d, or a qemu error)", code, code/2)
		default:
			st.Detail = fmt.Sprintf("qemu exited with code %d", code)
		}
		if code != 0 && !strings.Contains(st.Detail, "killed") {
			if out := tail(filepath.Join(dir, fileQemuLog), 300); out != "" {
				st.Detail += ": " + out
			}
		}
	}
	st.Detail = truncate(st.Detail)
	return st
}

// watchEvents records the reason of qemu's SHUTDOWN event in the instance
// directory, through the events monitor, until qemu ends or the runtime
// closes.
func (r *Runtime) watchEvents(inst *instance, run *vmRun) {
	defer close(run.evDone)
	sock := filepath.Join(inst.dir, sockEvents)
	for {
		select {
		case <-run.done:
			return
		case <-r.stop:
			return
		default:
		}
		q, err := dialQMP(context.Background(), sock, 3*time.Second)
		if err != nil {
			// Another client holds the monitor (an engine that is still
			// closing) or qemu is ending.
			select {
			case <-run.done:
				return
			case <-r.stop:
				return
			case <-time.After(time.Second):
				continue
			}
		}
		stopped := make(chan struct{})
		go func() {
			select {
			case <-run.done:
			case <-r.stop:
			case <-stopped:
			}
			q.Close()
		}()
		for {
			m, err := q.read()
			if err != nil {
				close(stopped)
				return // qemu closed the monitor: it is ending
			}
			if m.Event == "STOP" {
				go r.checkStopped(inst)
				continue
			}
			if m.Event != "SHUTDOWN" {
				continue
			}
			var data struct {
				Guest  bool   `json:"guest"`
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(m.Data, &data)
			if data.Reason != "" {
				// The first reason stands (checkStopped's quit follows its own).
				f, err := os.OpenFile(filepath.Join(inst.dir, fileReason), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err == nil {
					_, err = f.WriteString(data.Reason + "\n")
					f.Close()
				}
				if err != nil && !errors.Is(err, os.ErrExist) {
					r.log.Warn("record shutdown reason", "instance", inst.key, "err", err)
				}
			}
		}
	}
}

// checkStopped ends a machine that the accelerator stopped for good (a KVM
// internal error, e.g. an instruction KVM cannot emulate): qemu would keep
// it paused forever. The reason is recorded for exitState.
func (r *Runtime) checkStopped(inst *instance) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q, err := dialQMP(ctx, filepath.Join(inst.dir, sockQMP), 3*time.Second)
	if err != nil {
		return
	}
	defer q.Close()
	_ = q.c.SetDeadline(time.Now().Add(3 * time.Second))
	res, err := q.execute("query-status", nil, nil)
	if err != nil {
		return
	}
	var status struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(res, &status) != nil || status.Status != "internal-error" {
		return
	}
	r.log.Warn("the accelerator stopped the machine (internal error); quitting qemu", "instance", inst.key, "kvm", r.KVM())
	if err := os.WriteFile(filepath.Join(inst.dir, fileReason), []byte("internal-error\n"), 0o600); err != nil {
		r.log.Warn("record shutdown reason", "instance", inst.key, "err", err)
	}
	_, _ = q.execute("quit", nil, nil)
}

// pollRun watches the run of an adopted machine (not our child) until
// neither qemu nor its supervisor is alive, or the runtime closes.
func (r *Runtime) pollRun(inst *instance, run *vmRun) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		if !procIs(run.qemuPid, run.marker) && !procIs(run.supPid, run.marker) {
			r.finish(inst, run)
			return
		}
	}
}

// Remove stops the instance's machine (ACPI power button, then QMP quit,
// then SIGKILL), removes its network plumbing and deletes its directory.
// Removing an unknown key is not an error. No event is sent.
func (r *Runtime) Remove(ctx context.Context, key string) error {
	unlock := r.instances.Lock(key)
	defer unlock()
	r.mu.Lock()
	inst := r.insts[key]
	r.mu.Unlock()
	if inst == nil {
		if err := r.removeLeftover(ctx, key); err != nil {
			return fmt.Errorf("unikernel runtime: remove %s: %w", key, err)
		}
		return nil
	}
	if err := r.remove(ctx, inst); err != nil {
		return fmt.Errorf("unikernel runtime: remove %s: %w", key, err)
	}
	return nil
}

// removeLeftover removes an instance directory of key that this runtime
// does not hold (made by another runtime on the same state directory since
// this one started), stopping its machine.
func (r *Runtime) removeLeftover(ctx context.Context, key string) error {
	dir := r.dirOf(key)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	inst := r.load(dir)
	if inst == nil {
		return os.RemoveAll(dir)
	}
	return r.remove(ctx, inst)
}

// remove stops inst, tears down its network and deletes its directory.
// Caller holds the instance's lock.
func (r *Runtime) remove(ctx context.Context, inst *instance) error {
	r.mu.Lock()
	run := inst.run
	running := run != nil && !run.exited
	if run != nil {
		run.stopping = true
	}
	r.mu.Unlock()
	if running {
		if err := r.stopVM(ctx, inst, run); err != nil {
			return err
		}
	}
	if ns := inst.spec.Labels[runtimes.LabelNetNS]; ns != "" {
		if err := teardownNet(ns); err != nil {
			r.log.Warn("tear down network", "instance", inst.key, "err", err)
		}
	}
	if err := os.RemoveAll(inst.dir); err != nil {
		return fmt.Errorf("remove instance directory: %w", err)
	}
	r.mu.Lock()
	if r.insts[inst.key] == inst {
		delete(r.insts, inst.key)
	}
	inst.removed = true
	r.mu.Unlock()
	return nil
}

// stopVM ends run: power button, then quit, then SIGKILL.
func (r *Runtime) stopVM(ctx context.Context, inst *instance, run *vmRun) error {
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-run.done:
			return true
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	sock := filepath.Join(inst.dir, sockQMP)
	// Press the power button, again every few seconds during the grace
	// period: a guest still booting misses a press.
	graceEnd := time.Now().Add(r.cfg.StopGrace)
	for left := time.Until(graceEnd); left > 0 && ctx.Err() == nil; left = time.Until(graceEnd) {
		if err := qmpCommand(ctx, sock, "system_powerdown", 2*time.Second); err != nil {
			r.log.Debug("system_powerdown", "instance", inst.key, "err", err)
			break
		}
		if wait(min(left, powerdownRepeat)) {
			return nil
		}
	}
	r.log.Info("guest did not power off; quitting qemu", "instance", inst.key, "grace", r.cfg.StopGrace)
	if err := qmpCommand(ctx, sock, "quit", 2*time.Second); err != nil {
		r.log.Debug("quit", "instance", inst.key, "err", err)
	}
	if wait(killWait) {
		return nil
	}
	kill(run.qemuPid, run.marker)
	kill(run.supPid, run.marker)
	// The wait ignores ctx from here on: a killed process ends at once.
	select {
	case <-run.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("qemu (pid %d) did not end after SIGKILL", run.qemuPid)
	}
}

// adopt loads every instance directory: see load.
func (r *Runtime) adopt() error {
	entries, err := os.ReadDir(r.instDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(r.instDir, e.Name())
		inst := r.load(dir)
		if inst == nil {
			r.log.Warn("removing an incomplete instance directory", "dir", dir)
			_ = os.RemoveAll(dir)
			continue
		}
		if inst.dir != r.dirOf(inst.key) {
			r.log.Warn("instance directory under an unexpected name; ignoring it", "dir", dir, "instance", inst.key)
			continue
		}
		r.insts[inst.key] = inst
		if inst.state.Status == wire.StatusRunning {
			r.log.Info("adopted running virtual machine", "instance", inst.key, "pid", inst.run.qemuPid)
		}
	}
	return nil
}

// load reads the instance in dir (nil if it has no record): a running
// machine is watched from now on.
func (r *Runtime) load(dir string) *instance {
	var rec record
	b, err := os.ReadFile(filepath.Join(dir, fileRecord))
	if err != nil || json.Unmarshal(b, &rec) != nil || rec.Spec.Key == "" {
		return nil
	}
	inst := &instance{key: rec.Spec.Key, dir: dir, spec: rec.Spec}
	run := &vmRun{
		supPid:  readPid(filepath.Join(dir, fileSupervisor)),
		qemuPid: readPid(filepath.Join(dir, fileQemuPid)),
		marker:  filepath.Join(dir, fileQemuPid),
		done:    make(chan struct{}),
		evDone:  make(chan struct{}),
	}
	inst.run = run
	if procIs(run.qemuPid, run.marker) || procIs(run.supPid, run.marker) {
		inst.state = runtimes.State{Key: inst.key, Status: wire.StatusRunning, Spec: rec.Spec, StartedAt: rec.StartedAt}
		run.watched.Store(true)
		go r.pollRun(inst, run)
		go r.watchEvents(inst, run)
		return inst
	}
	st := exitState(dir)
	st.Key, st.Spec, st.StartedAt = inst.key, rec.Spec, rec.StartedAt
	inst.state = st
	run.exited, run.final = true, st
	close(run.done)
	close(run.evDone)
	return inst
}

// List returns every instance this runtime holds, running or exited
// (including those adopted from an earlier runtime), sorted by key.
func (r *Runtime) List(ctx context.Context) ([]runtimes.State, error) {
	r.mu.Lock()
	out := make([]runtimes.State, 0, len(r.insts))
	for _, inst := range r.insts {
		out = append(out, inst.state)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Logs returns at most maxBytes of the end of the instance's serial
// console, starting at a line boundary when cut, without carriage returns
// and terminal escape sequences.
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
	// Read a little more: cleaning removes bytes.
	want := int64(maxBytes) + int64(maxBytes)/4 + 64
	buf, cut, err := runtimes.ReadTail(filepath.Join(inst.dir, fileConsole), want)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("logs %s: %w", key, err)
	}
	buf = cleanConsole(buf)
	if len(buf) > maxBytes {
		buf = buf[len(buf)-maxBytes:]
		cut = true
	}
	if cut {
		buf = runtimes.DropPartialLine(buf)
	}
	return string(buf), nil
}

// cleanConsole drops carriage returns and ANSI escape sequences (firmware
// clears the screen) from serial console output.
func cleanConsole(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '\r':
		case c == 0x1b:
			// ESC [ params final, or ESC and one character.
			if i+1 < len(b) && b[i+1] == '[' {
				j := i + 2
				for j < len(b) && (b[j] < 0x40 || b[j] > 0x7e) {
					j++
				}
				i = j
			} else {
				i++
			}
		default:
			out = append(out, c)
		}
	}
	return out
}

// Usage returns qemu's CPU use since the previous call (0 on the first)
// and its resident memory: the whole machine as the node sees it. An
// exited instance has zero usage.
func (r *Runtime) Usage(ctx context.Context, key string) (runtimes.Usage, error) {
	r.mu.Lock()
	inst := r.insts[key]
	var run *vmRun
	if inst != nil {
		run = inst.run
	}
	r.mu.Unlock()
	if inst == nil {
		return runtimes.Usage{}, fmt.Errorf("usage %s: %w", key, runtimes.ErrNotFound)
	}
	if run == nil || !procIs(run.qemuPid, run.marker) {
		return runtimes.Usage{}, nil
	}
	var u runtimes.Usage
	if kib, err := procRSSKiB(run.qemuPid); err == nil {
		u.MemoryMB = (kib + 1023) / 1024
	}
	ticks, err := procCPUTicks(run.qemuPid)
	if err != nil {
		return u, nil
	}
	now := time.Now()
	r.mu.Lock()
	prev := inst.cpu
	inst.cpu = cpuSample{ticks: ticks, at: now}
	r.mu.Unlock()
	if !prev.at.IsZero() && ticks >= prev.ticks {
		if el := now.Sub(prev.at).Seconds(); el > 0 {
			u.CPUPercent = float64(ticks-prev.ticks) / clockTicks / el * 100
		}
	}
	return u, nil
}

// dirOf is the directory of instance key.
func (r *Runtime) dirOf(key string) string {
	return filepath.Join(r.instDir, runtimes.FileName(key))
}

// tail is the last line(s) of file, at most n bytes, on one line.
func tail(file string, n int) string {
	return strings.Join(strings.Fields(logEnd(file, n)), " ")
}

// logEnd is the end of file, at most n bytes, without the white space
// around it ("" if file cannot be read).
func logEnd(file string, n int) string {
	// Read more than n: trailing white space does not count.
	b, _, err := runtimes.ReadTail(file, int64(n)+4096)
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

func truncate(s string) string {
	if len(s) > maxDetail {
		return s[:maxDetail]
	}
	return s
}
