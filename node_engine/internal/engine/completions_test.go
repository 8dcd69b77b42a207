package engine

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// indexed is a spec of an indexed one-shot service: completions 4,
// retries as given, index 2.
func indexed(key string, retries int, ended string) wire.InstanceSpec {
	s := specs(key)[0]
	s.OneShot, s.Completions, s.Retries, s.InstanceNumber, s.Ended = true, 4, retries, 2, ended
	s.Environment = []string{"A=1"}
	return s
}

// TestCompletionsReconcile: a FAILED index is retried in place while it
// has retries left; a COMPLETED one, or one the cluster says ended, is
// never started again, also when the runtime no longer has it.
func TestCompletionsReconcile(t *testing.T) {
	for _, tc := range []struct {
		name       string
		spec       wire.InstanceSpec
		restarts   int // already done by this engine
		runs       []runtimes.State
		wantStarts []string
	}{
		{name: "a failed index is retried after its backoff", spec: indexed("a", 2, ""),
			runs: []runtimes.State{exited("a", wire.StatusFailed, time.Second, 3*time.Second)}, wantStarts: []string{"a"}},
		{name: "not before its backoff", spec: indexed("a", 2, ""),
			runs: []runtimes.State{exited("a", wire.StatusFailed, time.Second, 0)}},
		{name: "not beyond its retries", spec: indexed("a", 2, ""), restarts: 2,
			runs: []runtimes.State{exited("a", wire.StatusFailed, time.Second, time.Hour)}},
		{name: "backoff_limit 0: never retried", spec: indexed("a", 0, ""),
			runs: []runtimes.State{exited("a", wire.StatusFailed, time.Second, time.Hour)}},
		{name: "a completed index is not run again", spec: indexed("a", 2, ""),
			runs: []runtimes.State{exited("a", wire.StatusCompleted, time.Second, time.Hour)}},
		{name: "an index that ended FAILED by the cluster's word is not retried", spec: indexed("a", 2, wire.StatusFailed),
			runs: []runtimes.State{exited("a", wire.StatusFailed, time.Second, time.Hour)}},
		{name: "an ended index the runtime lost is not started again", spec: indexed("a", 2, wire.StatusCompleted)},
		{name: "a one-shot index not yet run starts", spec: indexed("a", 2, ""), wantStarts: []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newFakeRuntime("container", tc.runs...)
			e := newTestEngine(Config{}, rt)
			e.restarts[tc.spec.Key] = tc.restarts
			e.want(wire.NodeDesired{Instances: []wire.InstanceSpec{tc.spec}})
			e.settleOnce(t)
			starts, removes := rt.calls()
			if !slices.Equal(starts, tc.wantStarts) || len(removes) > 0 {
				t.Errorf("started %v removed %v; want started %v", starts, removes, tc.wantStarts)
			}
		})
	}
}

// TestIndexEnvironment: every instance is told its index; an index of an
// indexed job also the count (as the pool size).
func TestIndexEnvironment(t *testing.T) {
	got := withIndex(indexed("a", 1, "")).Environment
	want := []string{"A=1", "THICKET_INSTANCE_INDEX=2", "THICKET_POOL_SIZE=4", "THICKET_COMPLETIONS=4"}
	if !slices.Equal(got, want) {
		t.Errorf("environment %q, want %q", got, want)
	}
	s := indexed("a", 1, "")
	s.JobGrant = &wire.JobGrant{PoolSize: 4}
	if got := withIndex(s).Environment; !slices.Equal(got, []string{"A=1", "THICKET_COMPLETIONS=4"}) {
		t.Errorf("with a job grant (which gives the index and pool size): %q", got)
	}
	for _, oneShot := range []bool{false, true} {
		plain := specs("b")[0]
		plain.OneShot, plain.InstanceNumber = oneShot, 7
		if got := withIndex(plain).Environment; !slices.Equal(got, []string{"THICKET_INSTANCE_INDEX=7"}) {
			t.Errorf("a plain service's instance 7 (one-shot %v): %q", oneShot, got)
		}
	}
}

// TestCompletionsReport: an index waiting for a retry is CREATING (a
// FAILED one-shot instance ended for good), one out of retries FAILED, an
// ended one the runtime lost reported as it ended, and one that never
// started with the reason it did not.
func TestCompletionsReport(t *testing.T) {
	b := startBroker(t)
	rt := newFakeRuntime("container",
		exited("retry", wire.StatusFailed, time.Second, 0),
		exited("spent", wire.StatusFailed, time.Second, time.Hour))
	e := newTestEngine(Config{}, rt)
	cl, c := b.connect(t, e)
	e.restarts["spent"] = 1
	// A start refused before any runtime held it (a code URL the policy
	// refuses): the cluster ended it, and the reason is still told.
	e.failed["refused"] = &failure{count: 1, next: time.Now().Add(time.Hour), detail: "code URL refused: 127.0.0.1 is a loopback address"}
	e.want(wire.NodeDesired{Generation: 3, Instances: []wire.InstanceSpec{
		indexed("retry", 3, ""), indexed("spent", 1, ""), indexed("gone", 3, wire.StatusCompleted),
		indexed("refused", 3, wire.StatusFailed)}})
	e.settleOnce(t)
	got := byKey(b.report(t, e, cl, c).Instances)
	for _, tc := range []struct{ key, status, detail string }{
		{"retry", wire.StatusCreating, "exited with code 1; retry 1 of 3 in "},
		{"spent", wire.StatusFailed, "exited with code 1"},
		{"gone", wire.StatusCompleted, "ended earlier"},
		{"refused", wire.StatusFailed, "code URL refused: 127.0.0.1 is a loopback address"},
	} {
		if s := got[tc.key]; s.Status != tc.status || !strings.HasPrefix(s.Detail, tc.detail) {
			t.Errorf("%s: %s %q; want %s %q", tc.key, s.Status, s.Detail, tc.status, tc.detail)
		}
	}
	if at := got["retry"].RestartAt; !at.After(time.Now()) {
		t.Errorf("retry at %v, want after now", at)
	}
}
