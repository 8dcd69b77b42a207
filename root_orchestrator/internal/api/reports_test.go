package api

import (
	"slices"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

func running(key string, cpu float64, logs string) wire.InstanceStatus {
	return wire.InstanceStatus{Key: key, Status: wire.StatusRunning, Node: "n1", HostIP: "10.0.0.1", CPUPercent: cpu, MemoryMB: 20, Logs: logs}
}

func keys(sts []wire.InstanceStatus) []string {
	var out []string
	for _, st := range sts {
		out = append(out, st.Key)
	}
	return out
}

// TestReportFilter replays a cluster's syncs and checks which statuses the
// root writes at each.
func TestReportFilter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	noCap := wire.InstanceStatus{Key: "c", Status: wire.StatusNoCapacity, Detail: "no node fits"}
	steps := []struct {
		name   string
		at     time.Duration
		report []wire.InstanceStatus
		forget bool
		failed bool // the write fails
		want   []string
	}{
		{"first report: all", 0, []wire.InstanceStatus{running("a", 1, "x"), running("b", 1, "")}, false, false, []string{"a", "b"}},
		{"nothing changed", time.Second, []wire.InstanceStatus{running("a", 1, "x"), running("b", 1, "")}, false, false, nil},
		{"usage changed, too soon", 2 * time.Second, []wire.InstanceStatus{running("a", 5, "x"), running("b", 1, "")}, false, false, nil},
		{"new log line: at once", 3 * time.Second, []wire.InstanceStatus{running("a", 5, "x\ny"), running("b", 1, "")}, false, false, []string{"a"}},
		{"usage changed after metricsEvery", 11 * time.Second, []wire.InstanceStatus{running("a", 7, "x\ny"), running("b", 2, "")}, false, false, []string{"b"}},
		{"state change and a new instance", 12 * time.Second, []wire.InstanceStatus{
			{Key: "a", Status: wire.StatusFailed, Detail: "exit 1"}, running("b", 2, ""), noCap}, false, false, []string{"a", "c"}},
		{"NO_CAPACITY is always written", 13 * time.Second, []wire.InstanceStatus{
			{Key: "a", Status: wire.StatusFailed, Detail: "exit 1"}, running("b", 2, ""), noCap}, false, false, []string{"c"}},
		{"b no longer reported, then again: written", 14 * time.Second, []wire.InstanceStatus{{Key: "a", Status: wire.StatusFailed, Detail: "exit 1"}}, false, false, nil},
		{"b back", 15 * time.Second, []wire.InstanceStatus{{Key: "a", Status: wire.StatusFailed, Detail: "exit 1"}, running("b", 2, "")}, false, false, []string{"b"}},
		{"a failed write is retried", 16 * time.Second, []wire.InstanceStatus{{Key: "a", Status: wire.StatusRunning}, running("b", 2, "")}, false, true, []string{"a"}},
		{"after the failure: all again", 17 * time.Second, []wire.InstanceStatus{{Key: "a", Status: wire.StatusRunning}, running("b", 2, "")}, false, false, []string{"a", "b"}},
		{"forgotten (cluster was inactive): all", 18 * time.Second, []wire.InstanceStatus{{Key: "a", Status: wire.StatusRunning}, running("b", 2, "")}, true, false, []string{"a", "b"}},
		{"unchanged within rewriteEvery", 47 * time.Second, []wire.InstanceStatus{{Key: "a", Status: wire.StatusRunning}, running("b", 2, "")}, false, false, nil},
		{"unchanged past rewriteEvery: rewritten", 48 * time.Second, []wire.InstanceStatus{{Key: "a", Status: wire.StatusRunning}, running("b", 2, "")}, false, false, []string{"a", "b"}},
	}
	f := newReportFilter()
	for _, s := range steps {
		now := t0.Add(s.at)
		if s.forget {
			f.forget("cl")
		}
		got := f.changed("cl", s.report, now)
		if !slices.Equal(keys(got), s.want) {
			t.Fatalf("%s: wrote %v, want %v", s.name, keys(got), s.want)
		}
		if s.failed {
			f.forget("cl")
			continue
		}
		f.stored("cl", got, now)
	}
	// Another cluster's memory is its own.
	if got := f.changed("other", []wire.InstanceStatus{running("a", 1, "")}, t0); len(got) != 1 {
		t.Errorf("another cluster's first report: wrote %v", keys(got))
	}
}
