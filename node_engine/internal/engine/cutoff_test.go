package engine

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// TestStopAfterCutOff: an instance whose service says stop_after is held
// stopped once the node has been cut off from its broker that long, and
// only until the cluster speaks again (a newer desired set, or the link
// up for the settle time); others keep running however long the cut.
func TestStopAfterCutOff(t *testing.T) {
	e := New(Config{}, runtimes.NewRegistry(), slog.New(slog.DiscardHandler))
	e.settle = 2 * time.Second
	stops := wire.InstanceSpec{Key: "s.0", Disconnect: &wire.Disconnect{Replace: true, StopAfter: 10, Reconcile: wire.KeepOriginal}}
	keeps := wire.InstanceSpec{Key: "k.0"}
	t0 := time.Now()
	held := func(spec wire.InstanceSpec, gen int64, at time.Duration) bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.cutOff(spec, gen, t0.Add(at))
	}
	e.link(true, t0)
	if held(stops, 1, 0) {
		t.Fatal("held while connected")
	}
	e.link(false, t0.Add(time.Second))
	if held(stops, 1, 5*time.Second) {
		t.Error("held after 4 s cut off; stop_after is 10 s")
	}
	if !held(stops, 1, 12*time.Second) {
		t.Error("not held after 11 s cut off; stop_after is 10 s")
	}
	if held(keeps, 1, time.Hour) {
		t.Error("a service without stop_after is stopped after an hour cut off")
	}
	// The link is back: the old (retained) desired set does not free it...
	e.link(true, t0.Add(20*time.Second))
	if !held(stops, 1, 21*time.Second) {
		t.Error("freed by the desired set it was stopped under, before the settle time")
	}
	// ...a newer one does.
	if held(stops, 2, 21*time.Second) {
		t.Error("still held after a newer desired set")
	}
	// Cut again, long enough: held; back and silent cluster: freed after settle.
	e.link(false, t0.Add(30*time.Second))
	if !held(stops, 2, 45*time.Second) {
		t.Error("not held in the second cut")
	}
	e.link(true, t0.Add(50*time.Second))
	if !held(stops, 2, 51*time.Second) {
		t.Error("freed before the settle time")
	}
	if held(stops, 2, 53*time.Second) {
		t.Error("still held after the link was up for the settle time")
	}
	// A one-shot instance stopped so runs at most once: never again.
	job := wire.InstanceSpec{Key: "j.0", OneShot: true, Disconnect: &wire.Disconnect{StopAfter: 10, Reconcile: wire.KeepOriginal}}
	e.link(false, t0.Add(60*time.Second))
	if !held(job, 3, 75*time.Second) {
		t.Error("one-shot instance not stopped after stop_after")
	}
	e.link(true, t0.Add(80*time.Second))
	if !held(job, 4, 90*time.Second) {
		t.Error("a one-shot instance stopped while cut off starts again")
	}
}

// TestHoldDroppedInstances: a desired set that drops most (or all) of
// what the node runs without listing it as removed does not stop it; an
// explicit removal, a small drop, or a set that wants them again ends the
// hold.
func TestHoldDroppedInstances(t *testing.T) {
	spec := func(keys ...string) []wire.InstanceSpec {
		var out []wire.InstanceSpec
		for _, k := range keys {
			out = append(out, wire.InstanceSpec{Key: k})
		}
		return out
	}
	runs := func(keys ...string) map[string]held {
		out := map[string]held{}
		for _, k := range keys {
			out[k] = held{}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		accept bool
		d      wire.NodeDesired
		have   map[string]held
		held   []string
	}{
		{name: "empty set, nothing removed", d: wire.NodeDesired{}, have: runs("a", "b", "c"), held: []string{"a", "b", "c"}},
		{name: "most dropped", d: wire.NodeDesired{Instances: spec("a")}, have: runs("a", "b", "c"), held: []string{"b", "c"}},
		{name: "most dropped, explicitly", d: wire.NodeDesired{Instances: spec("a"), Removed: []string{"b", "c"}}, have: runs("a", "b", "c")},
		{name: "empty set, all removed explicitly", d: wire.NodeDesired{Removed: []string{"a"}}, have: runs("a")},
		{name: "one of three dropped", d: wire.NodeDesired{Instances: spec("a", "b")}, have: runs("a", "b", "c")},
		{name: "operator accepts shrinking sets", accept: true, d: wire.NodeDesired{}, have: runs("a", "b")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New(Config{AcceptShrinkingSets: tc.accept}, runtimes.NewRegistry(), slog.New(slog.DiscardHandler))
			e.hold(tc.d, tc.have)
			var got []string
			for k := range e.held {
				got = append(got, k)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.held) {
				t.Errorf("held %v, want %v", got, tc.held)
			}
		})
	}
	// Held ones stay held until the set wants them or removes them.
	e := New(Config{}, runtimes.NewRegistry(), slog.New(slog.DiscardHandler))
	e.hold(wire.NodeDesired{}, runs("a", "b"))
	e.hold(wire.NodeDesired{Instances: spec("a")}, runs("a", "b"))
	if !e.held["b"] || e.held["a"] {
		t.Errorf("after a set that wants a: held %v, want only b", e.held)
	}
	e.hold(wire.NodeDesired{Instances: spec("a"), Removed: []string{"b"}}, runs("a", "b"))
	if len(e.held) != 0 {
		t.Errorf("after b was removed explicitly: held %v", e.held)
	}
}
