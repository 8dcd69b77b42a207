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

// List returns every instance of this node, sorted by key: two calls to
// containerd whatever their number. Running tasks not yet watched (adopted
// from an earlier engine) are watched from now on.
func (r *Runtime) List(ctx context.Context) ([]runtimes.State, error) {
	began := time.Now()
	filter := "labels." + strconv.Quote(LabelNode) + "==" + strconv.Quote(r.cfg.NodeName)
	cs, err := r.client.ContainerService().List(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("containerd runtime: list containers: %w", err)
	}
	if len(cs) == 0 {
		r.pruneUsage(nil, began)
		return nil, nil
	}
	resp, err := r.client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("containerd runtime: list tasks: %w", errdefs.FromGRPC(err))
	}
	procs := make(map[string]*tasktypes.Process, len(resp.Tasks))
	for _, p := range resp.Tasks {
		procs[p.ID] = p
	}
	out := make([]runtimes.State, 0, len(cs))
	listed := make(map[string]bool, len(cs))
	for _, c := range cs {
		listed[c.ID] = true
		st := r.stateOf(c, procs[c.ID])
		if st.Status == wire.StatusRunning || st.Status == wire.StatusCreating && procs[c.ID] != nil {
			r.watch(c.ID, st.Spec, st.StartedAt)
		}
		out = append(out, st)
	}
	// Instances removed behind this runtime's back leave no CPU sample.
	r.pruneUsage(listed, began)
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// stateOf is the state of container c whose task is p (nil if none).
func (r *Runtime) stateOf(c containers.Container, p *tasktypes.Process) runtimes.State {
	spec, ok := storedSpec(c)
	if !ok {
		spec = wire.InstanceSpec{Key: c.Labels[LabelInstance], ServiceID: c.Labels[LabelService]}
	}
	st := runtimes.State{
		Key:       c.Labels[LabelInstance],
		Spec:      spec,
		StartedAt: parseTime(c.Labels[labelStarted]),
	}
	if st.Key == "" {
		st.Key = spec.Key
	}
	if p == nil {
		switch {
		case c.Labels[labelError] != "":
			st.Status, st.Detail = wire.StatusFailed, c.Labels[labelError]
		case r.isStarting(c.ID):
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
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		r.unwatch(id)
		r.forgetUsage(id)
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
	logs, err := runtimes.LogTail(r.logPath(id), maxBytes)
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
