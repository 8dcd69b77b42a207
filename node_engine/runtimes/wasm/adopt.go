package wasm

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// adoptPoll is how often a watcher of an adopted sandbox (not this
// process's child, so not waitable) looks whether it ended.
const adoptPoll = 500 * time.Millisecond

// load reads the instance records under instDir: a sandbox still running
// in its cgroup is adopted and watched; one that ended is listed as
// exited, with its exit record (or what its cgroup says) as its end.
func (r *Runtime) load() {
	es, err := os.ReadDir(r.instDir)
	if err != nil {
		r.log.Warn("read the instance records", "dir", r.instDir, "err", err)
		return
	}
	for _, e := range es {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(r.instDir, e.Name())
		var rec record
		if err := readJSON(filepath.Join(dir, recordFile), &rec); err != nil || rec.Spec.Key == "" {
			r.log.Warn("unreadable instance record; removing it", "dir", dir, "err", err)
			_ = os.RemoveAll(dir)
			continue
		}
		src, err := parseCode(rec.Spec.Code)
		if err != nil {
			r.log.Warn("instance record with bad code; removing it", "dir", dir, "err", err)
			_ = os.RemoveAll(dir)
			continue
		}
		inst := &instance{
			spec: rec.Spec, src: src, dir: dir, logPath: r.logPath(rec.Spec.Key),
			state: runtimes.State{Key: rec.Spec.Key, Spec: rec.Spec, StartedAt: rec.StartedAt},
		}
		r.insts[rec.Spec.Key] = inst
		if r.cgroups == nil {
			inst.state.Status, inst.state.Detail = wire.StatusFailed, "no cgroups here to find its sandbox"
			continue
		}
		group := r.cgroups.Open(rec.Cgroup)
		rn := &run{pid: rec.Pid, group: group, done: make(chan struct{})}
		inst.run = rn
		if rec.Pid > 0 && group.Has(rec.Pid) {
			pidfd, err := unix.PidfdOpen(rec.Pid, 0)
			if err == nil {
				rn.running = true
				inst.state.Status = wire.StatusRunning
				r.log.Info("adopted a running module", "instance", rec.Spec.Key, "pid", rec.Pid)
				r.wg.Add(1)
				go r.watch(inst, rn, pidfd)
				continue
			}
		}
		// It ended while no runtime watched it.
		st := r.exitState(inst, group, nil)
		inst.state.Status, inst.state.ExitCode, inst.state.Detail = st.Status, st.ExitCode, st.Detail
		if fi, err := os.Stat(filepath.Join(dir, exitFile)); err == nil {
			inst.state.ExitedAt = fi.ModTime().UTC()
		} else {
			inst.state.ExitedAt = time.Now().UTC()
		}
		_ = group.Kill()
		_ = group.Delete()
		close(rn.done)
	}
}

// watch waits for an adopted sandbox (pidfd) to end, then records it. It
// returns at Close without recording anything.
func (r *Runtime) watch(inst *instance, rn *run, pidfd int) {
	defer r.wg.Done()
	defer unix.Close(pidfd)
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(adoptPoll/time.Millisecond))
		if r.ctx.Err() != nil {
			close(rn.done)
			return
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			r.log.Warn("watch an adopted sandbox", "instance", inst.spec.Key, "err", err)
			time.Sleep(adoptPoll)
			continue
		}
		if n > 0 {
			r.ended(inst, rn, nil)
			return
		}
	}
}
