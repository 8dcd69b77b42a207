package state

import (
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestWhereItRunsWrittenAtOnce: a report that moves an instance (from one
// node to another, or after it was lost) is written at once, even though
// nobody waits for a report, and so is an instance's end; the first
// report to name the node of an instance that never ran, on its way or
// running there, is written in the background, like its other statuses and
// like its assignment to the cluster.
func TestWhereItRunsWrittenAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before []wire.InstanceStatus // reported (and stored) first
		report wire.InstanceStatus
		atOnce bool
	}{
		{"first placement", nil, wire.InstanceStatus{Status: wire.StatusScheduled, NodeID: "n1", Node: "n1"}, false},
		{"first placement, running", nil, wire.InstanceStatus{Status: wire.StatusRunning, NodeID: "n1", Node: "n1"}, false},
		{"first report, completed", nil, wire.InstanceStatus{Status: wire.StatusCompleted, NodeID: "n1", Node: "n1"}, true},
		{"first report, failed", nil, wire.InstanceStatus{Status: wire.StatusFailed, NodeID: "n1", Node: "n1"}, true},
		{"moved to another node", []wire.InstanceStatus{{Status: wire.StatusRunning, NodeID: "n1", Node: "n1"}},
			wire.InstanceStatus{Status: wire.StatusScheduled, NodeID: "n2", Node: "n2"}, true},
		{"placed again after it was lost", []wire.InstanceStatus{{Status: wire.StatusRunning, NodeID: "n1", Node: "n1"}, {Status: wire.StatusLost}},
			wire.InstanceStatus{Status: wire.StatusScheduled, NodeID: "n2", Node: "n2"}, true},
		{"a status alone", []wire.InstanceStatus{{Status: wire.StatusScheduled, NodeID: "n1", Node: "n1"}},
			wire.InstanceStatus{Status: wire.StatusRunning, NodeID: "n1", Node: "n1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := NewMemory()
			s := open(t, mem) // not running: what is queued stays queued
			c1 := cluster(t, s, "c1", node("n1", 4096, 0), node("n2", 4096, 0))
			in := instance(t, s, "a", c1)
			apply := func(st wire.InstanceStatus) {
				t.Helper()
				st.Key = in.Key
				if _, _, err := s.ApplyReport(c1, Report{Statuses: []wire.InstanceStatus{st}}); err != nil {
					t.Fatal(err)
				}
			}
			for _, st := range tc.before {
				apply(st)
			}
			s.p.mu.Lock()
			delete(s.p.pending, changeKey{KindInstance, in.Key}) // as if written
			s.p.mu.Unlock()
			apply(tc.report)
			s.p.mu.Lock()
			q, ok := s.p.pending[changeKey{KindInstance, in.Key}]
			s.p.mu.Unlock()
			if !ok {
				t.Fatal("the report changed nothing to write")
			}
			if got := !q.lazy; got != tc.atOnce {
				t.Errorf("written at once: %v, want %v", got, tc.atOnce)
			}
		})
	}
}
