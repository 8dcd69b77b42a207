package containerd

import (
	"context"
	"time"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/errdefs"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// watch is the exit watcher of one task.
type watch struct {
	cancel context.CancelFunc
}

// watch starts watching container id's task for its exit, unless it is
// watched already. The exit is delivered on Events with spec and started.
//
// The watcher blocks in containerd's Wait call, which returns at once for a
// task that has already exited, so no exit is missed however late the
// watcher starts. If containerd goes away (restart), it retries until
// containerd is back; the shim keeps the task and its exit status meanwhile.
func (r *Runtime) watch(id string, spec wire.InstanceSpec, started time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.watches[id] != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	w := &watch{cancel: cancel}
	r.watches[id] = w
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			if r.watches[id] == w {
				delete(r.watches, id)
			}
			r.mu.Unlock()
			cancel()
		}()
		code, exitedAt, ok := r.waitExit(ctx, id)
		if !ok {
			return
		}
		st := runtimes.State{
			Key:       spec.Key,
			ExitCode:  code,
			StartedAt: started,
			ExitedAt:  exitedAt,
			Spec:      spec,
		}
		st.Status, st.Detail = exitStatus(code)
		r.log.Info("instance exited", "instance", spec.Key, "container", id, "code", code)
		select {
		case r.events <- st:
		default:
			r.log.Warn("events buffer full; exit dropped (List still shows it)", "instance", spec.Key)
		}
	}()
}

// watching reports whether id's task is watched: its exit watcher has not
// seen it exit (or be deleted) yet.
func (r *Runtime) watching(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.watches[id] != nil
}

// unwatch stops watching id's task: its exit will not be delivered.
func (r *Runtime) unwatch(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w := r.watches[id]; w != nil {
		w.cancel()
		delete(r.watches, id)
	}
}

// waitExit waits for the exit of id's task. ok is false when the wait was
// cancelled (unwatch, Close) or the task is gone (deleted by someone else).
func (r *Runtime) waitExit(ctx context.Context, id string) (code int, exitedAt time.Time, ok bool) {
	delay := 200 * time.Millisecond
	for {
		resp, err := r.client.TaskService().Wait(ctx, &tasks.WaitRequest{ContainerID: id})
		if ctx.Err() != nil {
			return 0, time.Time{}, false
		}
		if err == nil {
			if resp.ExitedAt != nil {
				exitedAt = resp.ExitedAt.AsTime()
			}
			return int(resp.ExitStatus), exitedAt, true
		}
		err = errdefs.FromGRPC(err)
		if errdefs.IsNotFound(err) {
			r.log.Debug("watched task is gone", "container", id)
			return 0, time.Time{}, false
		}
		r.log.Warn("waiting for task exit; retrying", "container", id, "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return 0, time.Time{}, false
		case <-time.After(delay):
		}
		if delay *= 2; delay > 5*time.Second {
			delay = 5 * time.Second
		}
	}
}

// markStarting counts a Start of container id in progress (d = +1 or -1).
// Either makes the containers as List last listed them stale: a Start
// creates, labels and replaces containers.
func (r *Runtime) markStarting(id string, d int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.containersGen++
	if r.starting[id] += d; r.starting[id] <= 0 {
		delete(r.starting, id)
	}
}

func (r *Runtime) isStarting(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starting[id] > 0
}
