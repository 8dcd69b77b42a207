package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// The reconciler over fake runtimes: no containerd, no broker. A test sets
// the desired set, runs one reconcile, waits for the starts and removals
// it put in the background, and looks at what the runtimes were asked.

// fakeRuntime is an in-memory runtimes.Runtime. Start makes the instance
// RUNNING (or fails with startErr); Remove forgets it.
type fakeRuntime struct {
	virt string

	mu       sync.Mutex
	states   map[string]runtimes.State
	startErr map[string]error
	listErr  error
	logs     map[string]string
	usage    runtimes.Usage
	starts   []string
	removes  []string
	lists    int
	events   chan runtimes.State
}

func newFakeRuntime(virt string, states ...runtimes.State) *fakeRuntime {
	r := &fakeRuntime{virt: virt, states: map[string]runtimes.State{}, startErr: map[string]error{}, logs: map[string]string{},
		events: make(chan runtimes.State, runtimes.EventBuffer)}
	for _, s := range states {
		r.states[s.Key] = s
	}
	return r
}

func (r *fakeRuntime) Virtualization() string          { return r.virt }
func (r *fakeRuntime) Available(context.Context) error { return nil }
func (r *fakeRuntime) Events() <-chan runtimes.State   { return r.events }
func (r *fakeRuntime) Usage(_ context.Context, key string) (runtimes.Usage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.states[key]; !ok {
		return runtimes.Usage{}, runtimes.ErrNotFound
	}
	return r.usage, nil
}

func (r *fakeRuntime) Start(_ context.Context, spec wire.InstanceSpec) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts = append(r.starts, spec.Key)
	if err := r.startErr[spec.Key]; err != nil {
		return err
	}
	r.states[spec.Key] = runtimes.State{Key: spec.Key, Status: wire.StatusRunning, StartedAt: time.Now(), Spec: spec}
	return nil
}

func (r *fakeRuntime) Remove(_ context.Context, key string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removes = append(r.removes, key)
	delete(r.states, key)
	return nil
}

func (r *fakeRuntime) List(context.Context) ([]runtimes.State, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lists++
	if r.listErr != nil {
		return nil, r.listErr
	}
	return slices.Collect(maps.Values(r.states)), nil
}

func (r *fakeRuntime) Logs(_ context.Context, key string, maxBytes int) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.logs[key]
	if !ok {
		return "", runtimes.ErrNotFound
	}
	return l[max(0, len(l)-maxBytes):], nil
}

// listed returns (and forgets) how often List was called.
func (r *fakeRuntime) listed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.lists
	r.lists = 0
	return n
}

// set replaces an instance's state, as if it exited.
func (r *fakeRuntime) set(s runtimes.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states[s.Key] = s
}

// calls returns (and forgets) the keys started and removed, sorted.
func (r *fakeRuntime) calls() (starts, removes []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	starts, removes = slices.Sorted(slices.Values(r.starts)), slices.Sorted(slices.Values(r.removes))
	r.starts, r.removes = nil, nil
	return starts, removes
}

func newTestEngine(cfg Config, rts ...runtimes.Runtime) *Engine {
	if cfg.Name == "" {
		cfg.Name, cfg.Address = "n1", "192.0.2.10"
	}
	return New(cfg, runtimes.NewRegistry(rts...), slog.New(slog.DiscardHandler))
}

// want sets the desired set as the broker would deliver it.
func (e *Engine) want(d wire.NodeDesired) {
	e.dmu.Lock()
	defer e.dmu.Unlock()
	e.desired, e.haveDesired = d, true
}

// settle runs one reconcile and waits for what it started in the
// background.
func (e *Engine) settleOnce(t *testing.T) {
	t.Helper()
	e.reconcile(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.mu.Lock()
		busy := len(e.busy)
		e.mu.Unlock()
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("starts and removals still running after 5 s: %v", e.busy)
		}
		time.Sleep(time.Millisecond)
	}
}

func specs(keys ...string) []wire.InstanceSpec {
	out := make([]wire.InstanceSpec, len(keys))
	for i, k := range keys {
		out[i] = wire.InstanceSpec{Key: k, Virtualization: "container", Code: "img"}
	}
	return out
}

func running(keys ...string) []runtimes.State {
	out := make([]runtimes.State, len(keys))
	for i, k := range keys {
		out[i] = runtimes.State{Key: k, Status: wire.StatusRunning, StartedAt: time.Now().Add(-time.Hour)}
	}
	return out
}

// exited is an instance that ran for ran and exited ago.
func exited(key, status string, ran, ago time.Duration) runtimes.State {
	end := time.Now().Add(-ago)
	return runtimes.State{Key: key, Status: status, StartedAt: end.Add(-ran), ExitedAt: end, Detail: "exited with code 1", ExitCode: 1}
}

// TestReconcile: one reconcile of a desired set against what the runtime
// holds, and what it asks the runtime to start and remove.
func TestReconcile(t *testing.T) {
	oneShot := func(k string) wire.InstanceSpec {
		s := specs(k)[0]
		s.OneShot = true
		return s
	}
	for _, tc := range []struct {
		name        string
		noDesired   bool
		desired     wire.NodeDesired
		runs        []runtimes.State
		wantStarts  []string
		wantRemoves []string
	}{
		{name: "starts what is missing", desired: wire.NodeDesired{Instances: specs("a", "b")}, runs: running("b"), wantStarts: []string{"a"}},
		{name: "adopts what runs", desired: wire.NodeDesired{Instances: specs("a", "b")}, runs: running("a", "b")},
		{name: "removes what the set dropped", desired: wire.NodeDesired{Instances: specs("a", "b", "c")}, runs: running("a", "b", "c", "d"), wantRemoves: []string{"d"}},
		{name: "removes what the set lists as removed", desired: wire.NodeDesired{Instances: specs("a"), Removed: []string{"b", "c"}}, runs: running("a", "b", "c"), wantRemoves: []string{"b", "c"}},
		{name: "holds what a shrinking set drops silently", desired: wire.NodeDesired{Instances: specs("a")}, runs: running("a", "b", "c")},
		{name: "holds everything on an empty set", desired: wire.NodeDesired{}, runs: running("a", "b")},
		{name: "touches nothing before the first desired set", noDesired: true, runs: running("a", "b")},
		{name: "restarts a crashed instance after its backoff", desired: wire.NodeDesired{Instances: specs("a")},
			runs: []runtimes.State{exited("a", wire.StatusFailed, 5*time.Second, 3*time.Second)}, wantStarts: []string{"a"}},
		{name: "waits out the backoff of a crashed instance", desired: wire.NodeDesired{Instances: specs("a")},
			runs: []runtimes.State{exited("a", wire.StatusFailed, 5*time.Second, 0)}},
		{name: "restarts a service that completed", desired: wire.NodeDesired{Instances: specs("a")},
			runs: []runtimes.State{exited("a", wire.StatusCompleted, 5*time.Second, 3*time.Second)}, wantStarts: []string{"a"}},
		{name: "a one-shot instance that completed stays done", desired: wire.NodeDesired{Instances: []wire.InstanceSpec{oneShot("a")}},
			runs: []runtimes.State{exited("a", wire.StatusCompleted, time.Second, time.Hour)}},
		{name: "a one-shot instance that failed stays failed", desired: wire.NodeDesired{Instances: []wire.InstanceSpec{oneShot("a")}},
			runs: []runtimes.State{exited("a", wire.StatusFailed, time.Second, time.Hour)}},
		{name: "a virtualization the node lacks is not started", desired: wire.NodeDesired{Instances: []wire.InstanceSpec{{Key: "u", Virtualization: "unikernel"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newFakeRuntime("container", tc.runs...)
			e := newTestEngine(Config{}, rt)
			if !tc.noDesired {
				e.want(tc.desired)
			}
			e.settleOnce(t)
			starts, removes := rt.calls()
			if !slices.Equal(starts, tc.wantStarts) || !slices.Equal(removes, tc.wantRemoves) {
				t.Errorf("started %v removed %v; want started %v removed %v", starts, removes, tc.wantStarts, tc.wantRemoves)
			}
			// A second reconcile of the same set changes nothing more.
			if !tc.noDesired {
				e.settleOnce(t)
				if starts, removes := rt.calls(); len(starts)+len(removes) > 0 {
					t.Errorf("second reconcile started %v removed %v; want nothing", starts, removes)
				}
			}
		})
	}
}

// TestStartFailureBacksOff: a start that fails is retried only after its
// backoff, which doubles with each failure, and the failure's reason stays
// until the start succeeds.
func TestStartFailureBacksOff(t *testing.T) {
	rt := newFakeRuntime("container")
	rt.startErr["a"] = errors.New("pull docker.io/x: not found")
	e := newTestEngine(Config{}, rt)
	e.want(wire.NodeDesired{Instances: specs("a")})

	e.settleOnce(t)
	e.settleOnce(t) // at once again: within the backoff
	if starts, _ := rt.calls(); !slices.Equal(starts, []string{"a"}) {
		t.Fatalf("starts %v; want one (the retry waits for the backoff)", starts)
	}
	f := e.failure(t, "a")
	if f.count != 1 || !strings.Contains(f.detail, "not found") || time.Until(f.next) < 500*time.Millisecond {
		t.Fatalf("after one failure: %+v; want count 1, the error, a retry in ~1 s", f)
	}

	e.expire("a") // the backoff is over
	e.settleOnce(t)
	if starts, _ := rt.calls(); !slices.Equal(starts, []string{"a"}) {
		t.Fatalf("starts %v after the backoff; want a retry", starts)
	}
	if f := e.failure(t, "a"); f.count != 2 || time.Until(f.next) < 1500*time.Millisecond {
		t.Fatalf("after two failures: %+v; want count 2 and a retry in ~2 s", f)
	}

	delete(rt.startErr, "a")
	e.expire("a")
	e.settleOnce(t)
	e.mu.Lock()
	_, stillFailed := e.failed["a"]
	e.mu.Unlock()
	if stillFailed {
		t.Error("a start that succeeded left the failure in place")
	}
}

// failure returns a copy of the failure recorded for key.
func (e *Engine) failure(t *testing.T, key string) failure {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.failed[key]
	if f == nil {
		t.Fatalf("no failure recorded for %s", key)
	}
	return *f
}

// expire ends key's backoff.
func (e *Engine) expire(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f := e.failed[key]; f != nil {
		f.next = time.Now().Add(-time.Millisecond)
	}
}

// TestCrashLoopBackoff: each exit of an instance that keeps crashing
// doubles the wait before its restart; an exit seen again on the next
// reconcile is not a new crash; one that ran for more than a minute before
// it exited starts over at 1 s.
func TestCrashLoopBackoff(t *testing.T) {
	rt := newFakeRuntime("container")
	e := newTestEngine(Config{}, rt)
	e.want(wire.NodeDesired{Instances: specs("a")})
	e.settleOnce(t)
	rt.calls()

	// The first crash, long enough ago for its 1 s backoff to be over.
	st := exited("a", wire.StatusFailed, time.Second, 1100*time.Millisecond)
	rt.set(st)
	e.settleOnce(t)
	if starts, _ := rt.calls(); len(starts) != 1 {
		t.Fatalf("first crash: %d restarts; want 1", len(starts))
	}
	for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
		// It crashes again, just after its restart (so within the new backoff).
		prev := e.failure(t, "a")
		st = runtimes.State{Key: "a", Status: wire.StatusFailed, StartedAt: prev.next, ExitedAt: prev.next.Add(10 * time.Millisecond), Detail: "exited with code 1"}
		rt.set(st)
		for range 2 { // the second reconcile sees the same exit
			e.settleOnce(t)
			f := e.failure(t, "a")
			if f.count != i+2 || !f.next.Equal(st.ExitedAt.Add(want)) || f.detail != st.Detail {
				t.Fatalf("crash %d: count %d, restart at exit+%s; want %d, exit+%s", i+2, f.count, f.next.Sub(st.ExitedAt), i+2, want)
			}
		}
		if starts, _ := rt.calls(); len(starts) != 0 {
			t.Fatalf("crash %d: restarted within the backoff", i+2)
		}
	}
	// Ran for two minutes, then crashed: 1 s again.
	prev := e.failure(t, "a")
	st = runtimes.State{Key: "a", Status: wire.StatusFailed, StartedAt: prev.next.Add(-2 * time.Minute), ExitedAt: prev.next.Add(time.Millisecond)}
	rt.set(st)
	e.settleOnce(t)
	if f := e.failure(t, "a"); f.count != 1 || !f.next.Equal(st.ExitedAt.Add(time.Second)) {
		t.Errorf("after a long run: count %d, restart at exit+%s; want 1, exit+1s", f.count, f.next.Sub(st.ExitedAt))
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{-1: 0, 0: 0, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 34: 30 * time.Second, 35: 30 * time.Second, 40: 30 * time.Second, 1000: 30 * time.Second} {
		if got := backoff(n); got != want {
			t.Errorf("backoff(%d) = %s; want %s", n, got, want)
		}
	}
}

// TestIncompleteListRemovesNothingElse: a runtime that does not answer is
// not taken for one that holds nothing: its instances are neither started
// again elsewhere nor removed, while another runtime's are reconciled.
func TestIncompleteList(t *testing.T) {
	broken := newFakeRuntime("wasm", running("w")...)
	broken.listErr = errors.New("connection refused")
	ok := newFakeRuntime("container", running("a", "x")...)
	e := newTestEngine(Config{}, broken, ok)
	w := specs("w")[0]
	w.Virtualization = "wasm"
	e.want(wire.NodeDesired{Instances: append(specs("a", "b"), w)})
	e.settleOnce(t)
	starts, removes := ok.calls()
	if !slices.Equal(starts, []string{"b"}) || !slices.Equal(removes, []string{"x"}) {
		t.Errorf("container runtime: started %v removed %v; want b started and x removed", starts, removes)
	}
	// The wasm instance is unknown: it is started (Start on an existing
	// instance is a restart at most), never removed.
	if _, removes := broken.calls(); len(removes) != 0 {
		t.Errorf("removed %v from a runtime that did not answer", removes)
	}
}

// TestRemovedInstanceForgotten: what an instance left behind in the
// engine (its failure, restarts, last logs) goes when it leaves the set.
func TestRemovedInstanceForgotten(t *testing.T) {
	rt := newFakeRuntime("container", exited("a", wire.StatusFailed, time.Second, 0))
	e := newTestEngine(Config{}, rt)
	e.want(wire.NodeDesired{Generation: 1, Instances: specs("a")})
	e.settleOnce(t)
	e.mu.Lock()
	e.lastLogs["a"] = "x"
	e.restarts["a"] = 3
	e.mu.Unlock()
	e.want(wire.NodeDesired{Generation: 2, Removed: []string{"a"}})
	e.settleOnce(t)
	if _, removes := rt.calls(); !slices.Equal(removes, []string{"a"}) {
		t.Fatalf("removed %v; want a", removes)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failed["a"] != nil || e.restarts["a"] != 0 || e.lastLogs["a"] != "" {
		t.Errorf("a removed instance left failed %v restarts %d logs %q", e.failed["a"], e.restarts["a"], e.lastLogs["a"])
	}
}

// TestCutOffStopsAndStartsAgain: an instance whose service says
// stop_after is removed when the node has been cut off that long, and
// started again once a newer desired set arrives; others keep running.
func TestCutOffStopsAndStartsAgain(t *testing.T) {
	stops := specs("s")[0]
	stops.Disconnect = &wire.Disconnect{Replace: true, StopAfter: 1, Reconcile: wire.KeepOriginal}
	keeps := specs("k")[0]
	rt := newFakeRuntime("container", running("s", "k")...)
	e := newTestEngine(Config{}, rt)
	e.settle = time.Hour
	e.want(wire.NodeDesired{Generation: 1, Instances: []wire.InstanceSpec{stops, keeps}})

	e.link(false, time.Now().Add(-2*time.Second))
	e.settleOnce(t)
	if starts, removes := rt.calls(); len(starts) != 0 || !slices.Equal(removes, []string{"s"}) {
		t.Fatalf("cut off 2 s: started %v removed %v; want s removed (stop_after 1 s)", starts, removes)
	}
	e.link(true, time.Now())
	e.settleOnce(t)
	if starts, _ := rt.calls(); len(starts) != 0 {
		t.Fatalf("started %v while the cluster has not spoken", starts)
	}
	e.want(wire.NodeDesired{Generation: 2, Instances: []wire.InstanceSpec{stops, keeps}})
	e.settleOnce(t)
	if starts, removes := rt.calls(); !slices.Equal(starts, []string{"s"}) || len(removes) != 0 {
		t.Errorf("after a newer desired set: started %v removed %v; want s started", starts, removes)
	}
}

// TestRestartCount: restarts of one instance are counted and reported;
// the first start is no restart.
func TestRestartCount(t *testing.T) {
	rt := newFakeRuntime("container")
	e := newTestEngine(Config{}, rt)
	e.want(wire.NodeDesired{Instances: specs("a")})
	for range 3 {
		e.settleOnce(t)
		rt.set(exited("a", wire.StatusFailed, 2*time.Minute, 2*time.Second))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.restarts["a"] != 2 {
		t.Errorf("restarts %d after one start and two restarts; want 2", e.restarts["a"])
	}
}

// keys of statuses, for messages.
func statusKeys(sts []wire.InstanceStatus) string {
	var b strings.Builder
	for _, s := range sts {
		fmt.Fprintf(&b, "%s=%s ", s.Key, s.Status)
	}
	return b.String()
}
