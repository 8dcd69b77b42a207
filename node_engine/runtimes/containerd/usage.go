package containerd

import (
	"context"
	"fmt"
	"strconv"
	"time"

	v1 "github.com/containerd/cgroups/stats/v1"
	v2 "github.com/containerd/cgroups/v2/stats"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/typeurl/v2"

	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// cpuSample is the previous CPU reading of one container, kept between
// Usage calls to turn the cumulative CPU time into a rate.
type cpuSample struct {
	// pid is the task's process: another pid is another task (a restart)
	// whose CPU time counts from zero again.
	pid uint32
	// cpu is the task's cumulative CPU time.
	cpu time.Duration
	// at is when containerd read cpu.
	at time.Time
	// taken is when this runtime received the reading (local clock).
	taken time.Time
	// percent is the rate the reading yielded, repeated to a concurrent
	// call that read no newer sample.
	percent float64
}

// Usage returns the instance's CPU and memory use from its task's cgroup,
// as containerd's shim reports it (cgroup v1 or v2).
//
//   - CPUPercent is the CPU time used since the previous Usage call for the
//     key divided by the wall time between the two readings, in percent of
//     one core. The first call, and the first after the task was restarted,
//     yields 0.
//   - MemoryMB is the working set, as the kubelet counts it: the cgroup's
//     memory usage minus its inactive page cache (inactive_file), which the
//     kernel reclaims first. It is rounded up to whole MiB.
//
// An instance whose task is not running (exited, never started, created
// only) has zero usage and no error; an unknown key is runtimes.ErrNotFound.
// Whether the task runs, and its process, come from the last List when it
// is less than tasksFresh old and saw the task running (the engine lists
// just before it asks), else from containerd.
// Usage does not wait for a Start or Remove of the instance in progress.
func (r *Runtime) Usage(ctx context.Context, key string) (runtimes.Usage, error) {
	id := ContainerID(r.cfg.NodeName, key)
	p := r.listedRunning(id, time.Now())
	if p == nil {
		var err error
		if p, err = r.runningProcess(ctx, id); err != nil {
			return runtimes.Usage{}, fmt.Errorf("usage %s: %w", key, err)
		}
	}
	if p == nil {
		// No process: is there an instance at all?
		r.forgetUsage(id)
		if _, err := r.client.ContainerService().Get(ctx, id); err != nil {
			if errdefs.IsNotFound(err) {
				return runtimes.Usage{}, fmt.Errorf("usage %s: %w", key, runtimes.ErrNotFound)
			}
			return runtimes.Usage{}, fmt.Errorf("usage %s: container %s: %w", key, id, err)
		}
		return runtimes.Usage{}, nil
	}

	if cpu, mem, ok := r.cgroupUsage(id); ok {
		return runtimes.Usage{
			CPUPercent: r.cpuPercent(id, cpuSample{pid: p.Pid, cpu: cpu, at: time.Now(), taken: time.Now()}),
			MemoryMB:   int64((mem + 1<<20 - 1) >> 20),
		}, nil
	}
	resp, err := r.client.TaskService().Metrics(ctx, &tasks.MetricsRequest{Filters: []string{"id==" + strconv.Quote(id)}})
	if err != nil {
		return runtimes.Usage{}, fmt.Errorf("usage %s: metrics of task %s: %w", key, id, errdefs.FromGRPC(err))
	}
	if len(resp.Metrics) == 0 {
		// containerd leaves out a task whose cgroup it could not read,
		// e.g. one that exited just now.
		if p, err := r.runningProcess(ctx, id); err == nil && p == nil {
			r.forgetUsage(id)
			return runtimes.Usage{}, nil
		}
		return runtimes.Usage{}, fmt.Errorf("usage %s: containerd returned no metrics for task %s", key, id)
	}
	m := resp.Metrics[0]
	cpu, mem, err := parseMetrics(m.Data)
	if err != nil {
		return runtimes.Usage{}, fmt.Errorf("usage %s: task %s: %w", key, id, err)
	}
	at := time.Now()
	if m.Timestamp != nil {
		at = m.Timestamp.AsTime()
	}
	return runtimes.Usage{
		CPUPercent: r.cpuPercent(id, cpuSample{pid: p.Pid, cpu: cpu, at: at, taken: time.Now()}),
		MemoryMB:   int64((mem + 1<<20 - 1) >> 20),
	}, nil
}

// cgroupUsage reads the CPU time and working set of container id's task
// from its cgroup, /<namespace>/<id> (containerd's default, which Start
// keeps), as containerd's shim would: a few small files instead of a
// metrics call through containerd and the shim, decoded from protobuf.
// ok is false when the group cannot be read here (another cgroup
// namespace, no cgroup file system): Usage then asks containerd.
func (r *Runtime) cgroupUsage(id string) (cpu time.Duration, workingSet uint64, ok bool) {
	if r.cgroups == nil {
		return 0, 0, false
	}
	st, err := r.cgroups.Open(cgroupPath(r.cfg.Namespace, id)).Stat()
	if err != nil {
		return 0, 0, false
	}
	return st.CPU, st.WorkingSet, true
}

// cgroupPath is the cgroup of container id's task in namespace ns, as
// containerd's default spec places it.
func cgroupPath(ns, id string) string { return "/" + ns + "/" + id }

// listedRunning is the process of container id's task as the last List
// saw it, if that was less than tasksFresh before now and it was running
// (or paused); nil otherwise. The engine lists just before it asks for
// usage: a call to containerd per instance spared. A task that exited
// since leaves its cgroup empty or gone, which Usage tells apart.
func (r *Runtime) listedRunning(id string, now time.Time) *tasktypes.Process {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.tasksAt) >= tasksFresh {
		return nil
	}
	switch p := r.tasks[id]; p.GetStatus() {
	case tasktypes.Status_RUNNING, tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
		return p
	default:
		return nil
	}
}

// tasksFresh is how long Usage takes the tasks as List saw them.
const tasksFresh = 2 * time.Second

// runningProcess is the process of container id's task if it runs (or is
// paused), nil if there is no task or it is not running.
func (r *Runtime) runningProcess(ctx context.Context, id string) (*tasktypes.Process, error) {
	resp, err := r.client.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: id})
	if err != nil {
		if err = errdefs.FromGRPC(err); errdefs.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("task %s: %w", id, err)
	}
	switch p := resp.GetProcess(); p.GetStatus() {
	case tasktypes.Status_RUNNING, tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
		return p, nil
	default:
		return nil, nil
	}
}

// parseMetrics reads the cumulative CPU time and the working set (bytes)
// from a task's metrics: cgroup v1 or v2 statistics.
func parseMetrics(data typeurl.Any) (cpu time.Duration, workingSet uint64, err error) {
	if data == nil || data.GetTypeUrl() == "" {
		return 0, 0, fmt.Errorf("metrics without data")
	}
	v, err := typeurl.UnmarshalAny(data)
	if err != nil {
		return 0, 0, fmt.Errorf("decode metrics (%s): %w", data.GetTypeUrl(), err)
	}
	switch m := v.(type) {
	case *v1.Metrics:
		if m.CPU != nil && m.CPU.Usage != nil {
			cpu = time.Duration(m.CPU.Usage.Total) // nanoseconds
		}
		if m.Memory != nil && m.Memory.Usage != nil {
			workingSet = sub(m.Memory.Usage.Usage, m.Memory.TotalInactiveFile)
		}
	case *v2.Metrics:
		if m.CPU != nil {
			cpu = time.Duration(m.CPU.UsageUsec) * time.Microsecond
		}
		if m.Memory != nil {
			workingSet = sub(m.Memory.Usage, m.Memory.InactiveFile)
		}
	default:
		return 0, 0, fmt.Errorf("unsupported metrics type %s", data.GetTypeUrl())
	}
	return cpu, workingSet, nil
}

// sub is a-b, or 0 if b > a.
func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// cpuPercent records cur as container id's latest CPU sample and returns
// the rate since the previous one: 0 if there is none or it belongs to
// another task.
func (r *Runtime) cpuPercent(id string, cur cpuSample) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, ok := r.samples[id]
	switch {
	case !ok || prev.pid != cur.pid || cur.cpu < prev.cpu:
		cur.percent = 0
	case !cur.at.After(prev.at):
		// A concurrent call stored a reading at least as new: keep it.
		return prev.percent
	default:
		cur.percent = 100 * float64(cur.cpu-prev.cpu) / float64(cur.at.Sub(prev.at))
	}
	r.samples[id] = cur
	return cur.percent
}

// forgetUsage drops container id's CPU sample.
func (r *Runtime) forgetUsage(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.samples, id)
}

// pruneUsage drops the CPU samples of containers not in keep, unless taken
// after since (by a Usage call racing the List that built keep).
func (r *Runtime) pruneUsage(keep map[string]bool, since time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, s := range r.samples {
		if !keep[id] && s.taken.Before(since) {
			delete(r.samples, id)
		}
	}
}
