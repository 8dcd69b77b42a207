package state

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestSetNodeMode: cordon, drain and uncordon move a node between the
// cluster's lists (never in both), wake the cluster's watch, and the same
// mode again changes nothing; unknown clusters, nodes and modes change
// nothing; a deleted node leaves the lists.
func TestSetNodeMode(t *testing.T) {
	s := open(t, NewMemory())
	c1 := cluster(t, s, "c1", node("n1", 4096, 0), node("n2", 4096, 0))
	cluster(t, s, "c2", node("m1", 4096, 0))
	before := s.Snapshot()
	for _, tc := range []struct {
		name, cluster, node string
		mode                NodeMode
	}{
		{"unknown cluster", "nope", "n1", Cordoned},
		{"unknown node", c1, "nope", Cordoned},
		{"a node of another cluster", c1, "m1", Drained},
		{"unknown mode", c1, "n1", "paused"},
	} {
		if _, err := s.SetNodeMode(tc.cluster, tc.node, tc.mode); err == nil || tc.mode != "paused" && !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v; want an error (ErrNotFound for what does not exist)", tc.name, err)
		}
	}
	if s.Snapshot().Index() != before.Index() {
		t.Fatal("a refused change changed the state")
	}

	for _, step := range []struct {
		node              string
		mode              NodeMode
		cordoned, drained []string
		changes           bool
	}{
		{"n1", Cordoned, []string{"n1"}, nil, true},
		{"n1", Cordoned, []string{"n1"}, nil, false},
		{"n2", Drained, []string{"n1"}, []string{"n2"}, true},
		{"n1", Drained, nil, []string{"n2", "n1"}, true},
		{"n2", Schedulable, nil, []string{"n1"}, true},
		{"n2", Schedulable, nil, []string{"n1"}, false},
		{"n1", Cordoned, []string{"n1"}, nil, true},
	} {
		prev := s.Snapshot()
		if _, err := s.SetNodeMode(c1, step.node, step.mode); err != nil {
			t.Fatalf("%s %q: %v", step.node, step.mode, err)
		}
		sn := s.Snapshot()
		c := sn.Cluster(c1)
		if !slices.Equal(c.CordonedNodes, step.cordoned) || !slices.Equal(c.DrainedNodes, step.drained) {
			t.Errorf("%s %q: cordoned %v, drained %v; want %v, %v", step.node, step.mode, c.CordonedNodes, c.DrainedNodes, step.cordoned, step.drained)
		}
		if c.NodeMode(step.node) != step.mode {
			t.Errorf("%s: mode %q, want %q", step.node, c.NodeMode(step.node), step.mode)
		}
		if changed := sn.Index() != prev.Index(); changed != step.changes {
			t.Errorf("%s %q: changed the state: %v, want %v", step.node, step.mode, changed, step.changes)
		}
		if d := sn.DesiredFor(c1, s.Epoch(), prev.Index(), s.Epoch()); step.changes && d.Empty() {
			t.Errorf("%s %q: the cluster's watch would not wake", step.node, step.mode)
		}
	}
	if _, err := s.DeleteNode(c1, "n1"); err != nil {
		t.Fatal(err)
	}
	if c := s.Snapshot().Cluster(c1); len(c.CordonedNodes)+len(c.DrainedNodes) != 0 {
		t.Errorf("a deleted node stays listed: %v, %v", c.CordonedNodes, c.DrainedNodes)
	}
}

// TestNodeModesDraining: a drained node shows as draining while an
// instance (not one ended) is on it, then as drained.
func TestNodeModesDraining(t *testing.T) {
	s := open(t, NewMemory())
	c1 := cluster(t, s, "c1", node("n1", 4096, 0), node("n2", 4096, 0), node("n3", 4096, 0))
	apps, _, err := s.CreateApplications("alice", oneApp("shop", microservice("web", "")))
	if err != nil {
		t.Fatal(err)
	}
	in, _, err := s.AddInstance(apps[0].Services[0])
	if err != nil {
		t.Fatal(err)
	}
	place := func(nodeID, status string) {
		t.Helper()
		if _, err := s.Write(func(tx *Txn) error {
			cp := *first[Instance](tx.r(), tInstances, "id", in.Key)
			cp.ClusterID, cp.NodeID, cp.Status = c1, nodeID, status
			tx.put(tInstances, KindInstance, cp.Key, &cp, true)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		id   string
		mode NodeMode
	}{{"n1", Drained}, {"n2", Cordoned}, {"n3", Drained}} {
		if _, err := s.SetNodeMode(c1, step.id, step.mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, node, status string
		want               map[string]NodeMode
	}{
		{"running on n1", "n1", wire.StatusRunning, map[string]NodeMode{"n1": Draining, "n2": Cordoned, "n3": Drained}},
		{"moved to n2", "n2", wire.StatusRunning, map[string]NodeMode{"n1": Drained, "n2": Cordoned, "n3": Drained}},
		{"UNKNOWN on n3", "n3", wire.StatusUnknown, map[string]NodeMode{"n1": Drained, "n2": Cordoned, "n3": Draining}},
		{"completed on n3", "n3", wire.StatusCompleted, map[string]NodeMode{"n1": Drained, "n2": Cordoned, "n3": Drained}},
	} {
		place(tc.node, tc.status)
		sn := s.Snapshot()
		got := sn.NodeModes(sn.Cluster(c1))
		if !maps.Equal(got, tc.want) {
			t.Errorf("%s: modes %v, want %v", tc.name, got, tc.want)
		}
	}
}
