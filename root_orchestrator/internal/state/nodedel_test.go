package state

import (
	"errors"
	"slices"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestDeleteNode: a deleted node leaves the root's view (and the peers of
// the other clusters) at once, its cluster's record lists it, the
// cluster's watch wakes (its delta is not empty), and the cluster's
// reports of it, sent before it learnt, do not bring it back. Unknown
// clusters and nodes are not found and change nothing.
func TestDeleteNode(t *testing.T) {
	s := open(t, NewMemory())
	c1 := cluster(t, s, "c1", node("n1", 4096, 0), node("n2", 4096, 0))
	cluster(t, s, "c2", node("m1", 4096, 0))
	before := s.Snapshot()

	for _, tc := range []struct{ name, cluster, node string }{
		{"unknown cluster", "nope", "n1"},
		{"unknown node", c1, "nope"},
		{"a node of another cluster", c1, "m1"},
	} {
		if _, err := s.DeleteNode(tc.cluster, tc.node); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v; want ErrNotFound", tc.name, err)
		}
	}
	if s.Snapshot().Index() != before.Index() {
		t.Fatal("a refused delete changed the state")
	}

	if _, err := s.DeleteNode(c1, "n1"); err != nil {
		t.Fatal(err)
	}
	sn := s.Snapshot()
	if got := sn.Cluster(c1).DeletedNodes; !slices.Equal(got, []string{"n1"}) {
		t.Errorf("the cluster's deleted nodes are %v; want [n1]", got)
	}
	if ns := sn.Nodes(c1); len(ns) != 1 || ns[0].ID != "n2" {
		t.Errorf("the cluster's nodes are %+v; want only n2", ns)
	}
	for _, p := range sn.Peers() {
		if p.NodeID == "n1" {
			t.Error("the deleted node is still a peer of the overlay")
		}
	}
	if d := sn.DesiredFor(c1, s.Epoch(), before.Index(), s.Epoch()); d.Empty() {
		t.Error("the delta after the delete is empty: the cluster's watch would not wake")
	}

	// The cluster reports it once more, not knowing yet.
	if _, _, err := s.ApplyReport(c1, Report{Full: true, Nodes: []wire.NodeInfo{node("n1", 4096, 0), node("n2", 4096, 0)}}); err != nil {
		t.Fatal(err)
	}
	if ns := s.Snapshot().Nodes(c1); len(ns) != 1 || ns[0].ID != "n2" {
		t.Errorf("after a report of it the cluster's nodes are %+v; want only n2", ns)
	}
}
