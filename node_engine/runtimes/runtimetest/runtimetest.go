// Package runtimetest is the conformance suite of runtimes.Runtime: what
// the node engine relies on from every runtime, checked the same way for
// each. A runtime's own tests run it with a Factory that makes fresh
// runtimes of its kind and specs for each scenario (as every containerd
// snapshotter runs containerd's snapshots testsuite):
//
//	func TestConformance(t *testing.T) {
//		runtimetest.Run(t, runtimetest.Factory{New: ..., Serve: ..., ...})
//	}
//
// Scenarios: start (and idempotent start), logs, remove, adopt (a new
// runtime over the same state finds a running instance through List),
// exit codes of one-shot instances (COMPLETED on 0, FAILED with the code
// otherwise) and restarts, events, the memory limit, and failures to start
// (missing code, malformed code, wrong digest).
//
// A runtime that genuinely cannot do a scenario says so in Factory.Cannot,
// with the reason; the suite logs the reason and checks what the runtime
// does instead where that is part of the contract (a runtime that cannot
// adopt must not claim to run what it lost, and starts it again).
package runtimetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// Scenario names a scenario a runtime may be unable to do (Factory.Cannot).
type Scenario string

// Scenarios that a runtime may declare it cannot do.
const (
	// Adopt: a new runtime over the same state lists and manages the
	// instances an earlier one started.
	Adopt Scenario = "adopt"
	// MemoryLimit: an instance cannot use more memory than
	// Resources.MemoryMB.
	MemoryLimit Scenario = "memory-limit"
)

// Broken is a way for an instance's code to be unusable (Factory.Broken).
type Broken int

// Ways code can be broken.
const (
	// MissingCode is code that names nothing that exists (an image not in
	// the registry, a URL that answers 404).
	MissingCode Broken = iota
	// MalformedCode is code that is not a reference or URL at all.
	MalformedCode
	// WrongDigest is code pinned to a digest its content does not have.
	WrongDigest
)

func (b Broken) String() string {
	switch b {
	case MissingCode:
		return "missing-code"
	case MalformedCode:
		return "malformed-code"
	case WrongDigest:
		return "wrong-digest"
	}
	return fmt.Sprintf("broken-%d", int(b))
}

// Factory makes what the suite needs for one kind of runtime.
type Factory struct {
	// New returns a fresh runtime over fresh state, and reopen, which
	// returns another runtime over the same state, as a node engine
	// restarted on the same node opens. Before calling reopen the suite
	// closes rt if it is an io.Closer (the engine stopping). New arranges
	// that whatever either runtime holds is removed when t ends.
	New func(t *testing.T) (rt runtimes.Runtime, reopen func(t *testing.T) runtimes.Runtime)
	// Serve returns the spec of an instance with key that runs until it is
	// removed; once it runs, its log holds ServeLog.
	Serve    func(t *testing.T, key string) wire.InstanceSpec
	ServeLog string
	// Exit returns the spec of a one-shot instance with key that exits
	// with code: 0, or one of ExitCodes.
	Exit func(t *testing.T, key string, code int) wire.InstanceSpec
	// ExitCodes are the non-zero codes Exit can make (at least one).
	ExitCodes []int
	// Alloc returns the spec of a one-shot instance with key, limited to
	// MemoryLimitMB (Resources.MemoryMB), that takes mb MiB of memory and
	// exits 0 if it got them. Not needed if Cannot[MemoryLimit].
	Alloc         func(t *testing.T, key string, mb int64) wire.InstanceSpec
	MemoryLimitMB int64
	// Broken returns the spec of an instance with key whose code is
	// broken as b says, and a text the error of Start must hold to say
	// what is wrong.
	Broken func(t *testing.T, key string, b Broken) (spec wire.InstanceSpec, wantErr string)
	// Cannot lists the scenarios this runtime cannot do, each with why.
	Cannot map[Scenario]string
	// Timeout bounds each wait: for an instance to run (its log to show
	// ServeLog) or to exit. 60 s if zero.
	Timeout time.Duration
}

// Run runs every scenario against the runtimes f makes, each as a subtest
// with a runtime of its own.
func Run(t *testing.T, f Factory) {
	if f.New == nil || f.Serve == nil || f.Exit == nil || f.Broken == nil || f.ServeLog == "" || len(f.ExitCodes) == 0 {
		t.Fatal("runtimetest: the factory lacks New, Serve, ServeLog, Exit, ExitCodes or Broken")
	}
	if _, cannot := f.Cannot[MemoryLimit]; !cannot && (f.Alloc == nil || f.MemoryLimitMB <= 0) {
		t.Fatal("runtimetest: the factory lacks Alloc or MemoryLimitMB")
	}
	if f.Timeout <= 0 {
		f.Timeout = 60 * time.Second
	}
	s := suite{f}
	for _, sc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"start", s.start},
		{"logs", s.logs},
		{"remove", s.remove},
		{"adopt", s.adopt},
		{"exit-codes", s.exitCodes},
		{"events", s.events},
		{"memory-limit", s.memoryLimit},
		{"start-failures", s.startFailures},
	} {
		t.Run(sc.name, sc.run)
	}
}

type suite struct{ f Factory }

// ctx is a context for one runtime call.
func (s suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*s.f.Timeout)
	t.Cleanup(cancel)
	return ctx
}

func (s suite) start(t *testing.T) {
	rt, _ := s.f.New(t)
	ctx := s.ctx(t)
	if rt.Virtualization() == "" {
		t.Errorf("Virtualization is empty")
	}
	if err := rt.Available(ctx); err != nil {
		t.Fatalf("Available: %v", err)
	}
	sp := s.f.Serve(t, "start.0")
	t0 := time.Now()
	if err := rt.Start(ctx, sp); err != nil {
		t.Fatalf("Start: %v", err)
	}
	st := mustState(t, rt, sp.Key)
	if st.Status != wire.StatusRunning {
		t.Fatalf("after Start: %s (%s), want %s", st.Status, st.Detail, wire.StatusRunning)
	}
	if !wire.SameSpec(st.Spec, sp) {
		t.Errorf("List's spec = %+v, want the spec started %+v", st.Spec, sp)
	}
	if st.StartedAt.IsZero() || st.StartedAt.Before(t0.Add(-time.Second)) || st.StartedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("StartedAt = %v, want between %v and now", st.StartedAt, t0)
	}
	WaitLog(t, rt, sp.Key, s.f.ServeLog, s.f.Timeout)

	// Start of a running instance with the same spec leaves it alone.
	if err := rt.Start(ctx, sp); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if again := mustState(t, rt, sp.Key); again.Status != wire.StatusRunning || !again.StartedAt.Equal(st.StartedAt) {
		t.Errorf("second Start restarted the instance: %+v, was started at %v", again, st.StartedAt)
	}
	if _, err := rt.Usage(ctx, sp.Key); err != nil {
		t.Errorf("Usage: %v", err)
	}
	if _, err := rt.Usage(ctx, "unknown.0"); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("Usage of an unknown key: %v, want ErrNotFound", err)
	}
}

func (s suite) logs(t *testing.T) {
	rt, _ := s.f.New(t)
	ctx := s.ctx(t)
	sp := s.f.Serve(t, "logs.0")
	if err := rt.Start(ctx, sp); err != nil {
		t.Fatalf("Start: %v", err)
	}
	logs := WaitLog(t, rt, sp.Key, s.f.ServeLog, s.f.Timeout)
	if len(logs) < 8 {
		t.Fatalf("logs too short to cut: %q", logs)
	}
	// A cut tail is at most maxBytes, the end of the whole.
	for _, n := range []int{1, 7, len(logs) / 2} {
		tail, err := rt.Logs(ctx, sp.Key, n)
		if err != nil {
			t.Fatalf("Logs(%d): %v", n, err)
		}
		if len(tail) > n {
			t.Errorf("Logs(%d) returned %d bytes", n, len(tail))
		}
		if whole, _ := rt.Logs(ctx, sp.Key, 1<<20); !strings.HasSuffix(whole, tail) {
			t.Errorf("Logs(%d) = %q is not the end of the log", n, tail)
		}
	}
	if tail, err := rt.Logs(ctx, sp.Key, 0); err != nil || tail != "" {
		t.Errorf("Logs(0) = %q, %v; want nothing", tail, err)
	}
	if _, err := rt.Logs(ctx, "unknown.0", 100); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("Logs of an unknown key: %v, want ErrNotFound", err)
	}
}

func (s suite) remove(t *testing.T) {
	rt, _ := s.f.New(t)
	ctx := s.ctx(t)
	sp := s.f.Serve(t, "remove.0")
	if err := rt.Start(ctx, sp); err != nil {
		t.Fatalf("Start: %v", err)
	}
	WaitLog(t, rt, sp.Key, s.f.ServeLog, s.f.Timeout)
	if err := rt.Remove(ctx, sp.Key); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if st, ok := Find(t, rt, sp.Key); ok {
		t.Errorf("List after Remove shows %+v", st)
	}
	if _, err := rt.Logs(ctx, sp.Key, 100); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("Logs after Remove: %v, want ErrNotFound", err)
	}
	if _, err := rt.Usage(ctx, sp.Key); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("Usage after Remove: %v, want ErrNotFound", err)
	}
	NoEvent(t, rt, time.Second)
	if err := rt.Remove(ctx, sp.Key); err != nil {
		t.Errorf("Remove of a removed key: %v", err)
	}
	if err := rt.Remove(ctx, "never.0"); err != nil {
		t.Errorf("Remove of an unknown key: %v", err)
	}
	// The key can be used again.
	if err := rt.Start(ctx, sp); err != nil {
		t.Fatalf("Start after Remove: %v", err)
	}
	if st := mustState(t, rt, sp.Key); st.Status != wire.StatusRunning {
		t.Errorf("Start after Remove: %+v, want RUNNING", st)
	}
}

func (s suite) adopt(t *testing.T) {
	rt, reopen := s.f.New(t)
	ctx := s.ctx(t)
	sp := s.f.Serve(t, "adopt.0")
	if err := rt.Start(ctx, sp); err != nil {
		t.Fatalf("Start: %v", err)
	}
	WaitLog(t, rt, sp.Key, s.f.ServeLog, s.f.Timeout)
	before := mustState(t, rt, sp.Key)
	if c, ok := rt.(io.Closer); ok {
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	rt2 := reopen(t)

	if why, cannot := s.f.Cannot[Adopt]; cannot {
		t.Logf("%s runtimes cannot adopt: %s; checking that the new runtime claims nothing it lost and starts the instance again", rt2.Virtualization(), why)
		if st, ok := Find(t, rt2, sp.Key); ok && (st.Status == wire.StatusRunning || st.Status == wire.StatusCreating) {
			t.Fatalf("a runtime that cannot adopt lists %+v", st)
		}
		if err := rt2.Start(ctx, sp); err != nil {
			t.Fatalf("Start on the new runtime: %v", err)
		}
		if st := mustState(t, rt2, sp.Key); st.Status != wire.StatusRunning {
			t.Fatalf("Start on the new runtime: %+v, want RUNNING", st)
		}
		WaitLog(t, rt2, sp.Key, s.f.ServeLog, s.f.Timeout)
		return
	}

	st := mustState(t, rt2, sp.Key)
	if st.Status != wire.StatusRunning || !wire.SameSpec(st.Spec, sp) || !st.StartedAt.Equal(before.StartedAt) {
		t.Fatalf("adopted: %+v; want RUNNING with the spec started and StartedAt %v", st, before.StartedAt)
	}
	logs, err := rt2.Logs(ctx, sp.Key, 1<<20)
	if err != nil || !strings.Contains(logs, s.f.ServeLog) {
		t.Errorf("Logs of the adopted instance = %q, %v; want %q", logs, err, s.f.ServeLog)
	}
	if _, err := rt2.Usage(ctx, sp.Key); err != nil {
		t.Errorf("Usage of the adopted instance: %v", err)
	}
	// Start with the same spec leaves the adopted instance alone.
	if err := rt2.Start(ctx, sp); err != nil {
		t.Fatalf("Start of the adopted instance: %v", err)
	}
	if again := mustState(t, rt2, sp.Key); again.Status != wire.StatusRunning || !again.StartedAt.Equal(before.StartedAt) {
		t.Errorf("Start restarted the adopted instance: %+v", again)
	}
	if err := rt2.Remove(ctx, sp.Key); err != nil {
		t.Fatalf("Remove through the new runtime: %v", err)
	}
	if st, ok := Find(t, rt2, sp.Key); ok {
		t.Errorf("List after Remove shows %+v", st)
	}
}

func (s suite) exitCodes(t *testing.T) {
	rt, _ := s.f.New(t)
	for _, code := range append([]int{0}, s.f.ExitCodes...) {
		t.Run(fmt.Sprintf("exit%d", code), func(t *testing.T) {
			ctx := s.ctx(t)
			sp := s.f.Exit(t, fmt.Sprintf("exit%d.0", code), code)
			wantStatus := wire.StatusCompleted
			if code != 0 {
				wantStatus = wire.StatusFailed
			}
			check := func(what string, st runtimes.State) {
				t.Helper()
				if st.Status != wantStatus || st.ExitCode != code || st.Detail == "" || st.StartedAt.IsZero() || st.ExitedAt.IsZero() {
					t.Errorf("%s: %s code %d (%q), started %v, exited %v; want %s code %d with a detail and times",
						what, st.Status, st.ExitCode, st.Detail, st.StartedAt, st.ExitedAt, wantStatus, code)
				}
			}
			if err := rt.Start(ctx, sp); err != nil {
				t.Fatalf("Start: %v", err)
			}
			ev := WaitEvent(t, rt, sp.Key, s.f.Timeout)
			check("event", ev)
			st := mustState(t, rt, sp.Key)
			check("List", st)

			// Start of an exited instance runs it again.
			if err := rt.Start(ctx, sp); err != nil {
				t.Fatalf("restart: %v", err)
			}
			ev2 := WaitEvent(t, rt, sp.Key, s.f.Timeout)
			check("event of the restart", ev2)
			if !ev2.StartedAt.After(ev.StartedAt) {
				t.Errorf("restart StartedAt %v, not after the first run's %v", ev2.StartedAt, ev.StartedAt)
			}
			if err := rt.Remove(ctx, sp.Key); err != nil {
				t.Fatalf("Remove: %v", err)
			}
		})
	}
}

func (s suite) events(t *testing.T) {
	rt, _ := s.f.New(t)
	ctx := s.ctx(t)
	if rt.Events() == nil {
		t.Fatal("Events is nil")
	}
	serve := s.f.Serve(t, "events.1")
	if err := rt.Start(ctx, serve); err != nil {
		t.Fatalf("Start: %v", err)
	}
	sp := s.f.Exit(t, "events.2", 0)
	t0 := time.Now()
	if err := rt.Start(ctx, sp); err != nil {
		t.Fatalf("Start: %v", err)
	}
	ev := WaitEvent(t, rt, sp.Key, s.f.Timeout)
	if ev.Status != wire.StatusCompleted || !wire.SameSpec(ev.Spec, sp) {
		t.Errorf("event = %+v; want COMPLETED with the spec", ev)
	}
	if ev.StartedAt.Before(t0.Add(-time.Second)) || ev.ExitedAt.Before(ev.StartedAt) || ev.ExitedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("event times: started %v, exited %v; want start after %v, exit after start", ev.StartedAt, ev.ExitedAt, t0)
	}
	// One exit is one event; the serving instance runs on; removing it
	// (the engine's doing) is no event.
	WaitLog(t, rt, serve.Key, s.f.ServeLog, s.f.Timeout)
	if err := rt.Remove(ctx, serve.Key); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	NoEvent(t, rt, time.Second)
}

func (s suite) memoryLimit(t *testing.T) {
	if why, cannot := s.f.Cannot[MemoryLimit]; cannot {
		t.Logf("this runtime does not limit memory: %s", why)
		return
	}
	rt, _ := s.f.New(t)
	limit := s.f.MemoryLimitMB
	for _, tc := range []struct {
		name   string
		mb     int64
		status string
	}{
		{"within", limit / 8, wire.StatusCompleted},
		{"over", 2 * limit, wire.StatusFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := s.ctx(t)
			sp := s.f.Alloc(t, "alloc-"+tc.name+".0", tc.mb)
			if sp.Resources.MemoryMB != limit {
				t.Fatalf("Alloc's spec is limited to %d MiB, want %d", sp.Resources.MemoryMB, limit)
			}
			if err := rt.Start(ctx, sp); err != nil {
				t.Fatalf("Start: %v", err)
			}
			ev := WaitEvent(t, rt, sp.Key, s.f.Timeout)
			t.Logf("%d MiB under a limit of %d MiB: %s code %d: %s", tc.mb, limit, ev.Status, ev.ExitCode, ev.Detail)
			if ev.Status != tc.status || (ev.ExitCode == 0) != (tc.status == wire.StatusCompleted) {
				t.Errorf("%d MiB under a limit of %d MiB: %s code %d (%s), want %s", tc.mb, limit, ev.Status, ev.ExitCode, ev.Detail, tc.status)
			}
			if err := rt.Remove(ctx, sp.Key); err != nil {
				t.Fatalf("Remove: %v", err)
			}
		})
	}
}

func (s suite) startFailures(t *testing.T) {
	rt, _ := s.f.New(t)
	for _, b := range []Broken{MissingCode, MalformedCode, WrongDigest} {
		t.Run(b.String(), func(t *testing.T) {
			ctx := s.ctx(t)
			sp, want := s.f.Broken(t, b.String()+".0", b)
			err := rt.Start(ctx, sp)
			if err == nil {
				t.Fatalf("Start of %q succeeded", sp.Code)
			}
			t.Logf("Start of %q: %v", sp.Code, err)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Start of %q: %v; want it to say %q", sp.Code, err, want)
			}
			// The engine reports the instance FAILED with the error; the
			// runtime must not claim it runs.
			if st, ok := Find(t, rt, sp.Key); ok && (st.Status != wire.StatusFailed || st.Detail == "") {
				t.Errorf("List after a failed Start: %+v; want nothing, or FAILED with a detail", st)
			}
			if err := rt.Remove(ctx, sp.Key); err != nil {
				t.Errorf("Remove after a failed Start: %v", err)
			}
			if st, ok := Find(t, rt, sp.Key); ok {
				t.Errorf("List after Remove shows %+v", st)
			}
		})
	}
	NoEvent(t, rt, 200*time.Millisecond)
}

// Find is key's State in List (false if List lacks it).
func Find(t testing.TB, rt runtimes.Runtime, key string) (runtimes.State, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	states, err := rt.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, st := range states {
		if st.Key == key {
			return st, true
		}
	}
	return runtimes.State{}, false
}

// mustState is key's State in List, failing the test if it is not there.
func mustState(t *testing.T, rt runtimes.Runtime, key string) runtimes.State {
	t.Helper()
	st, ok := Find(t, rt, key)
	if !ok {
		t.Fatalf("List does not show %s", key)
	}
	return st
}

// WaitLog waits until key's log holds want, for at most timeout, and
// returns the log.
func WaitLog(t testing.TB, rt runtimes.Runtime, key, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		logs, err := rt.Logs(context.Background(), key, 1<<20)
		if err != nil {
			t.Fatalf("Logs(%s): %v", key, err)
		}
		if strings.Contains(logs, want) {
			return logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log of %s lacks %q after %v:\n%s", key, want, timeout, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitEvent waits, at most timeout, for the next event of key; events of
// other instances are passed over.
func WaitEvent(t testing.TB, rt runtimes.Runtime, key string, timeout time.Duration) runtimes.State {
	t.Helper()
	tm := time.After(timeout)
	for {
		select {
		case st, ok := <-rt.Events():
			if !ok {
				t.Fatalf("Events closed while waiting for %s", key)
			}
			if st.Key == key {
				return st
			}
		case <-tm:
			t.Fatalf("no event for %s within %v", key, timeout)
		}
	}
}

// NoEvent fails the test if an event arrives within d.
func NoEvent(t testing.TB, rt runtimes.Runtime, d time.Duration) {
	t.Helper()
	select {
	case st := <-rt.Events():
		t.Fatalf("unexpected event %+v", st)
	case <-time.After(d):
	}
}
