package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// List returns every instance of this node, sorted by key. Running tasks
// not yet watched (adopted from an earlier engine) are watched from now on.
//
// It asks containerd for the tasks of the namespace, one call whatever
// their number. This node's containers (their labels and specs) are listed
// too only when they may have changed (listContainers): the engine lists
// every second, and a container record, with its OCI spec, is kilobytes
// to receive and decode for what changes only when an instance is started
// or removed.
func (r *Runtime) List(ctx context.Context) ([]runtimes.State, error) {
	began := time.Now()
	cs, procs, err := r.observe(ctx, began)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		r.pruneUsage(nil, began)
		return nil, nil
	}
	out := make([]runtimes.State, 0, len(cs))
	listed := make(map[string]bool, len(cs))
	for _, c := range cs {
		listed[c.id] = true
		st := r.stateOf(c, procs[c.id])
		if st.Status == wire.StatusRunning || st.Status == wire.StatusCreating && procs[c.id] != nil {
			r.watch(c.id, st.Spec, st.StartedAt)
		}
		out = append(out, st)
	}
	// Instances removed behind this runtime's back leave no CPU sample.
	r.pruneUsage(listed, began)
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// listedContainer is what List needs of one of this node's containers.
type listedContainer struct {
	id string
	// key, started and failure are its labels LabelInstance,
	// labelStarted and labelError.
	key     string
	started time.Time
	failure string
	// spec is the instance spec stored with it, or only its key and
	// service from the labels if it has none.
	spec wire.InstanceSpec
}

// taskMark is what of a task tells that it changed: a task deleted, or
// started, or one that exited, may come with a container deleted or
// created (by someone else, or by this runtime; then it listed again
// anyway).
type taskMark struct {
	present bool
	pid     uint32
	status  tasktypes.Status
}

func markOf(p *tasktypes.Process) taskMark {
	if p == nil {
		return taskMark{}
	}
	return taskMark{present: true, pid: p.Pid, status: p.Status}
}

// listedContainers are this node's containers as last listed, kept
// between Lists.
type listedContainers struct {
	// gen is Runtime.containersGen when they were listed: a Start or
	// Remove of this runtime since then (a greater gen) makes them stale.
	gen uint64
	// at is when they were listed: older than containersFresh, they are
	// listed again, in case someone else changed them.
	at    time.Time
	items []listedContainer
	// tasks are the marks of their tasks when they were listed; a change
	// (a task gone, started, exited) makes them stale.
	tasks []taskMark
}

// containersFresh is how long this node's containers, as listed, are
// taken as they are while neither this runtime nor their tasks change.
// Only someone else deleting or creating this node's containers without
// touching a task (a container that has none) goes unseen meanwhile.
const containersFresh = 10 * time.Second

// observe returns this node's containers and the namespace's tasks, by
// container id: the containers as last listed while they cannot have
// changed, else listed again.
func (r *Runtime) observe(ctx context.Context, now time.Time) ([]listedContainer, map[string]*tasktypes.Process, error) {
	r.mu.Lock()
	kept, ok := r.containers, r.containers != nil && r.containers.gen == r.containersGen && now.Sub(r.containers.at) < containersFresh
	r.mu.Unlock()
	if ok {
		if len(kept.items) == 0 {
			// Nothing of this node's: no task to ask about either (new
			// containers come from Start, which makes the list stale).
			return nil, nil, nil
		}
		procs, err := r.listTasks(ctx)
		if err != nil {
			return nil, nil, err
		}
		same := true
		for i, c := range kept.items {
			if markOf(procs[c.id]) != kept.tasks[i] {
				same = false
				break
			}
		}
		if same {
			return kept.items, procs, nil
		}
	}
	cs, procs, err := r.listContainers(ctx, now)
	if err != nil {
		return nil, nil, err
	}
	return cs, procs, nil
}

// listContainers lists this node's containers, and then the namespace's
// tasks if it has any, and keeps the containers for the next Lists.
func (r *Runtime) listContainers(ctx context.Context, now time.Time) ([]listedContainer, map[string]*tasktypes.Process, error) {
	r.mu.Lock()
	gen := r.containersGen
	r.mu.Unlock()
	filter := "labels." + strconv.Quote(LabelNode) + "==" + strconv.Quote(r.cfg.NodeName)
	cs, err := r.client.ContainerService().List(ctx, filter)
	if err != nil {
		return nil, nil, fmt.Errorf("containerd runtime: list containers: %w", err)
	}
	var procs map[string]*tasktypes.Process
	if len(cs) > 0 {
		if procs, err = r.listTasks(ctx); err != nil {
			return nil, nil, err
		}
	}
	items := make([]listedContainer, len(cs))
	marks := make([]taskMark, len(cs))
	keep := make(map[string]bool, len(cs))
	for i, c := range cs {
		items[i] = listed(c)
		marks[i] = markOf(procs[c.ID])
		keep[r.logPath(c.ID)] = true
	}
	r.mu.Lock()
	r.containers = &listedContainers{gen: gen, at: now, items: items, tasks: marks}
	r.mu.Unlock()
	// The log tails of containers gone behind this runtime's back.
	r.logTails.Retain(func(file string) bool { return keep[file] })
	return items, procs, nil
}

// listTasks returns the tasks of the namespace by container id.
func (r *Runtime) listTasks(ctx context.Context) (map[string]*tasktypes.Process, error) {
	began := time.Now()
	resp, err := r.client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("containerd runtime: list tasks: %w", errdefs.FromGRPC(err))
	}
	procs := make(map[string]*tasktypes.Process, len(resp.Tasks))
	for _, p := range resp.Tasks {
		procs[p.ID] = p
	}
	r.mu.Lock()
	r.tasks, r.tasksAt = procs, began
	r.mu.Unlock()
	return procs, nil
}

// containersChanged makes the containers as listed stale: this runtime is
// about to change one, or just did.
func (r *Runtime) containersChanged() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.containersGen++
}

// listed is what List needs of container c.
func listed(c containers.Container) listedContainer {
	spec, ok := storedSpec(c)
	if !ok {
		spec = wire.InstanceSpec{Key: c.Labels[LabelInstance], ServiceID: c.Labels[LabelService]}
	}
	l := listedContainer{id: c.ID, key: c.Labels[LabelInstance], started: parseTime(c.Labels[labelStarted]),
		failure: c.Labels[labelError], spec: spec}
	if l.key == "" {
		l.key = spec.Key
	}
	return l
}

// stateOf is the state of container c whose task is p (nil if none).
// Its Spec is shared with other Lists' states: read only.
func (r *Runtime) stateOf(c listedContainer, p *tasktypes.Process) runtimes.State {
	st := runtimes.State{
		Key:       c.key,
		Spec:      c.spec,
		StartedAt: c.started,
	}
	if (p == nil || p.Status == tasktypes.Status_UNKNOWN) && r.watching(c.id) {
		// containerd left the task out, or could not read its state: it
		// asks each shim within 2 s, which a shim of a busy machine
		// misses. The task's exit watcher still waits for it, so it has
		// not exited (and was not deleted): it runs.
		st.Status = wire.StatusRunning
		return st
	}
	if p == nil {
		switch {
		case c.failure != "":
			st.Status, st.Detail = wire.StatusFailed, c.failure
		case r.isStarting(c.id):
			st.Status = wire.StatusCreating
		default:
			st.Status, st.Detail = wire.StatusFailed, "not started"
		}
		return st
	}
	switch p.Status {
	case tasktypes.Status_CREATED:
		st.Status = wire.StatusCreating
	case tasktypes.Status_RUNNING, tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
		st.Status = wire.StatusRunning
	case tasktypes.Status_STOPPED:
		st.ExitCode = int(p.ExitStatus)
		if p.ExitedAt != nil {
			st.ExitedAt = p.ExitedAt.AsTime()
		}
		st.Status, st.Detail = exitStatus(st.ExitCode)
	default:
		st.Status, st.Detail = wire.StatusFailed, "task state unknown"
	}
	return st
}

// exitStatus is the status and detail of an exit code.
func exitStatus(code int) (string, string) {
	if code == 0 {
		return wire.StatusCompleted, exitDetail(0)
	}
	return wire.StatusFailed, exitDetail(code)
}

// Remove stops the instance (SIGTERM, SIGKILL after StopGrace) and deletes
// its task, container, snapshot and log file. An unknown key is no error.
// No exit event is sent for it.
func (r *Runtime) Remove(ctx context.Context, key string) error {
	id := ContainerID(r.cfg.NodeName, key)
	unlock := r.instances.Lock(id)
	defer unlock()
	r.containersChanged()
	defer r.containersChanged()
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		r.unwatch(id)
		r.forgetUsage(id)
		r.logTails.Forget(r.logPath(id))
		if err := runtimes.RemoveLog(r.logPath(id)); err != nil {
			return fmt.Errorf("remove %s: %w", key, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: load container %s: %w", key, id, err)
	}
	if err := r.remove(ctx, id, c); err != nil {
		return fmt.Errorf("remove %s: %w", key, err)
	}
	return nil
}

// remove stops and deletes container c (id); the caller holds id's lock.
func (r *Runtime) remove(ctx context.Context, id string, c containerd.Container) error {
	r.unwatch(id)
	// Also after the task is gone, in case a concurrent Usage stored one.
	defer r.forgetUsage(id)
	if err := r.stopTask(ctx, c); err != nil {
		return err
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	r.logTails.Forget(r.logPath(id))
	return runtimes.RemoveLog(r.logPath(id))
}

// killWait bounds the wait for a task to die after SIGKILL.
const killWait = 10 * time.Second

// stopTask stops c's task, if any, and deletes it.
func (r *Runtime) stopTask(ctx context.Context, c containerd.Container) error {
	id := c.ID()
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("task %s: %w", id, err)
	}
	st, err := task.Status(ctx)
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("task %s: status: %w", id, err)
	}
	if err == nil && (st.Status == containerd.Running || st.Status == containerd.Paused || st.Status == containerd.Pausing) {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		exited, err := task.Wait(wctx)
		if err != nil {
			return fmt.Errorf("task %s: wait: %w", id, err)
		}
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			r.log.Warn("SIGTERM", "container", id, "err", err)
		}
		grace := time.NewTimer(r.cfg.StopGrace)
		defer grace.Stop()
		select {
		case <-exited:
		case <-ctx.Done():
			return fmt.Errorf("task %s: stop: %w", id, ctx.Err())
		case <-grace.C:
			r.log.Info("instance ignored SIGTERM; killing", "container", id, "grace", r.cfg.StopGrace)
			if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
				r.log.Warn("SIGKILL", "container", id, "err", err)
			}
			kill := time.NewTimer(killWait)
			defer kill.Stop()
			select {
			case <-exited:
			case <-kill.C:
			case <-ctx.Done():
				return fmt.Errorf("task %s: kill: %w", id, ctx.Err())
			}
		}
	}
	if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("task %s: delete: %w", id, err)
	}
	return nil
}

// Logs returns at most maxBytes of the end of the instance's output. When
// the output is cut, it starts after the first cut line.
func (r *Runtime) Logs(ctx context.Context, key string, maxBytes int) (string, error) {
	id := ContainerID(r.cfg.NodeName, key)
	logs, err := r.logTails.Tail(r.logPath(id), maxBytes)
	if errors.Is(err, os.ErrNotExist) {
		// No output yet, or no such instance.
		if _, err := r.client.LoadContainer(ctx, id); err != nil {
			if errdefs.IsNotFound(err) {
				return "", fmt.Errorf("logs %s: %w", key, runtimes.ErrNotFound)
			}
			return "", fmt.Errorf("logs %s: %w", key, err)
		}
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("logs %s: %w", key, err)
	}
	return logs, nil
}
