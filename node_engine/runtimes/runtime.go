// Package runtimes is the node engine's one interface to everything that
// runs instances: containers (runtimes/containerd), unikernels
// (runtimes/unikernel) and WebAssembly modules (runtimes/wasm). The engine
// reconciles its desired instances against what the runtimes report and
// never switches on virtualization outside the Registry.
//
// What the runtimes share lives here (SameSpec, FileName, LogTail, ...)
// and in runtimes/fetch (code downloaded by URL); runtimes/runtimetest is
// the conformance suite every runtime's tests run.
package runtimes

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// ErrNotFound is returned (wrapped) when a runtime holds no instance with
// the given key where one is required (Logs, Usage).
var ErrNotFound = errors.New("instance not found")

// State is what a runtime knows of one instance.
type State struct {
	// Key is the instance's wire.InstanceSpec.Key.
	Key string
	// Status is wire.StatusCreating, wire.StatusRunning, wire.StatusCompleted
	// (exited 0) or wire.StatusFailed (exited non-zero or could not start).
	Status   string
	ExitCode int
	// Detail explains the status, e.g. "exited with code 2".
	Detail    string
	StartedAt time.Time
	ExitedAt  time.Time
	// Spec is the spec the instance was created with, as stored with the
	// instance, so that an engine adopting it knows what it runs.
	Spec wire.InstanceSpec
}

// EventBuffer is the capacity of a runtime's Events channel. The engine
// reads it at once (a log line and a wake-up), so it only absorbs a burst of
// exits, and an exit dropped when it is full still shows in List. Each slot
// holds a State (about 400 bytes) for the life of the process: 1,024 slots
// kept 1.2 MB of an idle node engine's heap for its three runtimes.
const EventBuffer = 64

// LabelNetNS, in an instance spec's labels, is the path of the network
// namespace the instance joins (set by the node engine from the net
// manager); runtimes fall back to their configured default without it.
const LabelNetNS = "thicket.dev/netns"

// LabelJobsDir, in an instance spec's labels, is the host directory that
// holds the instance's job file (set by the node engine for an instance
// with a job grant): a runtime that can shows it read-only inside the
// instance at JobsMountPoint, as a directory, so that the instance sees
// the file replaced (a bind mount of the file would keep the old one).
const LabelJobsDir = "thicket.dev/jobs-dir"

// JobsMountPoint is where an instance sees its job directory; the file in
// it is JobsFile.
const (
	JobsMountPoint = "/run/thicket"
	JobsFile       = "jobs.json"
)

// Runtime runs instances of one virtualization.
type Runtime interface {
	// Virtualization is the SLA virtualization this runtime runs ("container").
	Virtualization() string
	// Available reports whether this runtime can run here (e.g. containerd
	// reachable); used to advertise virtualizations.
	Available(ctx context.Context) error
	// Start creates (if needed) and starts the instance. If the instance
	// exists and has exited, it is started again (a restart). It returns once
	// the process runs, or an error if it could not be started (bad image,
	// pull failure...).
	Start(ctx context.Context, spec wire.InstanceSpec) error
	// Remove stops the instance (SIGTERM, then SIGKILL after a grace period)
	// and removes everything it holds. Removing an unknown key is not an
	// error.
	Remove(ctx context.Context, key string) error
	// List returns every instance this runtime holds for this node, running
	// or exited: used to reconcile and, after a node engine restart, to
	// adopt what runs.
	List(ctx context.Context) ([]State, error)
	// Logs returns at most maxBytes of the end of the instance's combined
	// stdout and stderr.
	Logs(ctx context.Context, key string, maxBytes int) (string, error)
	// Events delivers a State whenever an instance exits, so that the engine
	// reacts at once instead of polling. It is buffered (EventBuffer).
	Events() <-chan State
	// Usage returns an instance's current resource use. CPUPercent is the share of one core used since the previous
	// Usage call for that key (0 on the first call), e.g. 150 for one and a half cores; MemoryMB its resident memory.
	// An instance without a running process has zero usage; an unknown key is ErrNotFound (wrapped).
	Usage(ctx context.Context, key string) (Usage, error)
}

// Usage is the resource use of one instance (Runtime.Usage).
type Usage struct {
	// CPUPercent is the share of one core used since the previous Usage
	// call for the instance: 100 is one full core, 150 one and a half.
	CPUPercent float64
	// MemoryMB is the instance's resident memory (working set) in MiB.
	MemoryMB int64
}

// Capable is implemented by runtimes that detect capabilities worth
// reporting to schedulers (e.g. wire.CapabilityKVM).
type Capable interface {
	Capabilities() []string
}

// Registry maps a virtualization to the Runtime that runs it.
type Registry struct {
	byVirt map[string]Runtime
}

// NewRegistry returns a registry of rs. A later runtime of the same
// virtualization replaces an earlier one.
func NewRegistry(rs ...Runtime) *Registry {
	r := &Registry{byVirt: make(map[string]Runtime, len(rs))}
	for _, rt := range rs {
		r.byVirt[rt.Virtualization()] = rt
	}
	return r
}

// Get returns the runtime of virtualization virt.
func (r *Registry) Get(virt string) (Runtime, bool) {
	rt, ok := r.byVirt[virt]
	return rt, ok
}

// All returns every registered runtime, ordered by virtualization.
func (r *Registry) All() []Runtime {
	out := make([]Runtime, 0, len(r.byVirt))
	for _, v := range r.virts() {
		out = append(out, r.byVirt[v])
	}
	return out
}

// Available returns the virtualizations whose runtime is available now,
// sorted.
func (r *Registry) Available(ctx context.Context) []string {
	var out []string
	for _, v := range r.virts() {
		if r.byVirt[v].Available(ctx) == nil {
			out = append(out, v)
		}
	}
	return out
}

func (r *Registry) virts() []string {
	vs := make([]string, 0, len(r.byVirt))
	for v := range r.byVirt {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	return vs
}
