package state

import (
	"fmt"
	"slices"

	"github.com/thicket-edge/thicket/contract/wire"
)

// NodeMode is what placement may do with a node: Schedulable (the
// default), Cordoned (nothing new is placed on it) or Drained (cordoned,
// and its cluster moves its instances to its other nodes).
type NodeMode string

const (
	Schedulable NodeMode = ""
	Cordoned    NodeMode = "cordoned"
	Drained     NodeMode = "drained"
	// Draining is how a drained node shows while instances are still on
	// it (NodeModes); it is set as Drained.
	Draining NodeMode = "draining"
)

// SetNodeMode records an admin's cordon, drain or uncordon of a node of a
// cluster; the cluster learns it with its next desired set. Setting the
// mode a node has changes nothing.
func (s *Store) SetNodeMode(clusterID, id string, mode NodeMode) (Ticket, error) {
	switch mode {
	case Schedulable, Cordoned, Drained:
	default:
		return Ticket{}, fmt.Errorf("node mode %q: not schedulable, cordoned or drained", mode)
	}
	return s.Write(func(t *Txn) error {
		old := first[Cluster](t.r(), tClusters, "id", clusterID)
		if old == nil {
			return fmt.Errorf("cluster %s: %w", clusterID, ErrNotFound)
		}
		if first[Node](t.r(), tNodes, "id", clusterID, id) == nil {
			return fmt.Errorf("node %s of cluster %s: %w", id, old.Name, ErrNotFound)
		}
		if old.NodeMode(id) == mode {
			return nil
		}
		c := *old
		c.CordonedNodes = slices.DeleteFunc(slices.Clone(c.CordonedNodes), func(x string) bool { return x == id })
		c.DrainedNodes = slices.DeleteFunc(slices.Clone(c.DrainedNodes), func(x string) bool { return x == id })
		switch mode {
		case Cordoned:
			c.CordonedNodes = append(c.CordonedNodes, id)
		case Drained:
			c.DrainedNodes = append(c.DrainedNodes, id)
		}
		t.put(tClusters, KindCluster, c.ID, &c, true)
		t.net = true // wakes the cluster's watch
		return nil
	})
}

// NodeMode is what placement may do with the cluster's node id.
func (c *Cluster) NodeMode(id string) NodeMode {
	switch {
	case slices.Contains(c.DrainedNodes, id):
		return Drained
	case slices.Contains(c.CordonedNodes, id):
		return Cordoned
	}
	return Schedulable
}

// NodeModes is the mode of each node of a cluster that has one, as the API
// shows it: a drained node is Draining while instances (other than ended
// ones) are still on it, as its cluster last reported, then Drained.
func (sn *Snapshot) NodeModes(c *Cluster) map[string]NodeMode {
	out := make(map[string]NodeMode, len(c.CordonedNodes)+len(c.DrainedNodes))
	for _, id := range c.CordonedNodes {
		out[id] = Cordoned
	}
	for _, id := range c.DrainedNodes {
		out[id] = Drained
	}
	if len(c.DrainedNodes) == 0 {
		return out
	}
	for _, in := range all[Instance](sn.r(), tInstances, "cluster", c.ID) {
		if out[in.NodeID] == Drained && in.Status != wire.StatusCompleted && !(in.Status == wire.StatusFailed && sn.oneShot(in)) {
			out[in.NodeID] = Draining
		}
	}
	return out
}

func (sn *Snapshot) oneShot(in *Instance) bool {
	svc := sn.Service(in.ServiceID)
	return svc != nil && specOf(svc, in).OneShot
}
