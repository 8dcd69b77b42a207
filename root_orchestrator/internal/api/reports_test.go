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

// TestNodesFilter replays a cluster's node lists and checks at which syncs
// the root stores the list again.
func TestNodesFilter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	node := func(name string, cpu float64, seen time.Duration) wire.NodeInfo {
		return wire.NodeInfo{ID: "id-" + name, Name: name, Arch: "amd64", Virtualizations: []string{"container"},
			Capacity: wire.Resources{MilliCPU: 4000, MemoryMB: 1024}, CPUPercent: cpu, Active: true, LastSeen: t0.Add(seen)}
	}
	reserved := node("n1", 1, 4*time.Second)
	reserved.Reserved = wire.Resources{MilliCPU: 500, MemoryMB: 128}
	lost := node("n2", 1, 5*time.Second)
	lost.Active = false
	steps := []struct {
		name   string
		at     time.Duration
		nodes  []wire.NodeInfo
		forget bool
		want   bool
	}{
		{"first sync: stored", 0, []wire.NodeInfo{node("n1", 1, 0), node("n2", 1, 0)}, false, true},
		{"only last-seen changed", time.Second, []wire.NodeInfo{node("n1", 1, time.Second), node("n2", 1, time.Second)}, false, false},
		{"usage changed, too soon", 2 * time.Second, []wire.NodeInfo{node("n1", 9, 2*time.Second), node("n2", 1, 2*time.Second)}, false, false},
		{"a node joined: at once", 3 * time.Second, []wire.NodeInfo{node("n1", 9, 3*time.Second), node("n2", 1, 3*time.Second), node("n3", 0, 3*time.Second)}, false, true},
		{"reservation changed: at once", 4 * time.Second, []wire.NodeInfo{reserved, node("n2", 1, 4*time.Second), node("n3", 0, 4*time.Second)}, false, true},
		{"a node lost: at once", 5 * time.Second, []wire.NodeInfo{reserved, lost, node("n3", 0, 5*time.Second)}, false, true},
		{"a node left: at once", 6 * time.Second, []wire.NodeInfo{reserved, lost}, false, true},
		{"unchanged", 7 * time.Second, []wire.NodeInfo{reserved, lost}, false, false},
		{"usage again after metricsEvery", 16 * time.Second, []wire.NodeInfo{reserved, lost}, false, true},
		{"unchanged after that", 17 * time.Second, []wire.NodeInfo{reserved, lost}, false, false},
		{"after forget (failed write, inactive cluster): stored", 18 * time.Second, []wire.NodeInfo{reserved, lost}, true, true},
		{"an empty cluster", 19 * time.Second, nil, false, true},
	}
	f := newReportFilter()
	other, _ := f.nodesChanged("other", nil, t0)
	for _, st := range steps {
		if st.forget {
			f.forget("c1")
		}
		now := t0.Add(st.at)
		got, sum := f.nodesChanged("c1", st.nodes, now)
		if got != st.want {
			t.Errorf("%s: write = %v, want %v", st.name, got, st.want)
		}
		if got {
			f.nodesStored("c1", sum, now)
		}
	}
	if !other {
		t.Error("a cluster's first sync is not stored")
	}
	if again, _ := f.nodesChanged("other", nil, t0); !again {
		t.Error("another cluster's state leaked into this one's")
	}
}
