package state

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestCompletions: a one-shot service with completions N has its
// instances 0..N-1 from its creation, each spec carrying N and the
// retries; no instance is added to it; a COMPLETED index is recorded at
// the root and never placed again, also after a restart of the root.
func TestCompletions(t *testing.T) {
	mem := NewMemory()
	s := open(t, mem)
	running(t, s)
	c1 := cluster(t, s, "c1", node("n1", 4096, 0))
	m := microservice("job", "")
	two := 2
	m.OneShot, m.Completions, m.BackoffLimit = true, 3, &two
	apps, tk, err := s.CreateApplications("u", oneApp("a", m))
	if err != nil {
		t.Fatal(err)
	}
	durable(t, s, tk)
	svcID := apps[0].Services[0]
	var nums []int
	for _, in := range s.Snapshot().Instances(svcID) {
		nums = append(nums, in.Number)
	}
	slices.Sort(nums)
	if !slices.Equal(nums, []int{0, 1, 2}) {
		t.Fatalf("instances %v, want indices 0..2", nums)
	}
	waiting := s.Snapshot().Waiting()
	if len(waiting) != 3 {
		t.Fatalf("%d instances waiting, want 3", len(waiting))
	}
	for _, p := range waiting {
		if p.Spec.Completions != 3 || p.Spec.Retries != 2 || !p.Spec.OneShot {
			t.Errorf("spec of %s: completions %d, retries %d, one_shot %v", p.Spec.Key, p.Spec.Completions, p.Spec.Retries, p.Spec.OneShot)
		}
	}

	// No instance is added: the indices are fixed.
	_, _, err = s.AddInstance(svcID)
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Field != "completions" {
		t.Fatalf("AddInstance on an indexed job: %v, want a conflict on completions", err)
	}
	if n := len(s.Snapshot().Instances(svcID)); n != 3 {
		t.Fatalf("%d instances after the refused add, want 3", n)
	}

	var as []Assignment
	for _, p := range waiting {
		as = append(as, Assignment{Key: p.Spec.Key, ClusterID: c1, NodeID: "n1"})
	}
	if _, err := s.Assign(as); err != nil {
		t.Fatal(err)
	}
	done := wire.InstanceKey(svcID, 1)
	_, tk, err = s.ApplyReport(c1, Report{Statuses: []wire.InstanceStatus{{Key: done, Status: wire.StatusCompleted, NodeID: "n1", Node: "n1"}}})
	if err != nil {
		t.Fatal(err)
	}
	durable(t, s, tk)

	// The root restarts: index 1 is still COMPLETED, and neither the
	// scheduler nor the loss of its cluster places it again.
	s2 := open(t, mem)
	if in := s2.Snapshot().Instance(done); in == nil || in.Status != wire.StatusCompleted {
		t.Fatalf("completed index after a restart: %+v", in)
	}
	// c1 reports to the restarted root (what the first one had of its
	// liveness may not be written yet), then falls silent.
	if _, _, err := s2.ApplyReport(c1, Report{Statuses: []wire.InstanceStatus{{Key: done, Status: wire.StatusCompleted, NodeID: "n1", Node: "n1"}}}); err != nil {
		t.Fatal(err)
	}
	if lost, _, err := s2.LoseCluster(c1, s2.Snapshot().Cluster(c1).LastSeen, "silent"); !lost || err != nil {
		t.Fatalf("LoseCluster: %v %v", lost, err)
	}
	cluster(t, s2, "c2", node("n2", 4096, 0))
	if _, err := s2.ReplaceUnknown(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, p := range s2.Snapshot().Waiting() {
		if p.Spec.Key == done {
			t.Errorf("the COMPLETED index waits to be placed again: %+v", p)
		}
	}
	if in := s2.Snapshot().Instance(done); in.Status != wire.StatusCompleted {
		t.Errorf("completed index after its cluster was lost: %s", in.Status)
	}
}
