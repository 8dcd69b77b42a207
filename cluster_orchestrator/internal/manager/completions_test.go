package manager

import (
	"context"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestCompletedIndexNeverRunsAgain: an index of an indexed one-shot
// service waiting for a retry (CREATING) may still run; once COMPLETED its
// node's desired set, published again at once, says it ended, and so does
// the set of a restarted manager: a node that lost it never starts it
// again.
func TestCompletedIndexNeverRunsAgain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m := newManager(t, realStore(t, dir), pub)
	id := join(t, m, "n1")
	var specs []wire.InstanceSpec
	for _, k := range []string{"job.0", "job.1"} {
		specs = append(specs, wire.InstanceSpec{Key: k, ServiceID: "job", Virtualization: "container", Code: "img", OneShot: true,
			Completions: 2, Retries: 1, Resources: wire.Resources{MilliCPU: 100, MemoryMB: 16}})
	}
	m.SetDesired(specs, nil)
	report := func(statuses ...wire.InstanceStatus) {
		t.Helper()
		m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: wire.NodeInfo{Active: true, Arch: "amd64",
			Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}, Instances: statuses})
		if err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ended := func(pub *recorder) map[string]string {
		out := map[string]string{}
		for _, s := range pub.desired[id].Instances {
			out[s.Key] = s.Ended
		}
		return out
	}
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	report(wire.InstanceStatus{Key: "job.0", Status: wire.StatusCreating, Detail: "exited with code 1; retry 1 of 1"},
		wire.InstanceStatus{Key: "job.1", Status: wire.StatusRunning})
	if e := ended(pub); len(e) != 2 || e["job.0"] != "" || e["job.1"] != "" {
		t.Fatalf("before any end the node's set says %v, want both in it, neither ended", e)
	}
	report(wire.InstanceStatus{Key: "job.0", Status: wire.StatusCompleted},
		wire.InstanceStatus{Key: "job.1", Status: wire.StatusFailed, Detail: "exited with code 1"})
	if e := ended(pub); e["job.0"] != wire.StatusCompleted || e["job.1"] != wire.StatusFailed {
		t.Fatalf("after the ends the node's set says %v, want job.0 COMPLETED, job.1 FAILED", e)
	}

	pub2 := &recorder{desired: map[string]wire.NodeDesired{}}
	m2 := newManager(t, realStore(t, dir), pub2)
	m2.SetDesired(specs, nil)
	m2.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: wire.NodeInfo{Active: true, Arch: "amd64",
		Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}})
	if err := m2.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if e := ended(pub2); e["job.0"] != wire.StatusCompleted {
		t.Errorf("after a restart the node's set says %v, want job.0 COMPLETED", e)
	}
}
