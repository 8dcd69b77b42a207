package state

import (
	"fmt"
	"slices"
)

// DeleteNode forgets a node of a cluster (an admin's delete) and records
// the deletion on the cluster: its desired sets tell the cluster, which
// revokes the node's credential, frees its subnet and places its
// instances on its other nodes. The cluster's reports of the node are
// ignored from now on.
func (s *Store) DeleteNode(clusterID, id string) (Ticket, error) {
	return s.Write(func(t *Txn) error {
		old := first[Cluster](t.r(), tClusters, "id", clusterID)
		if old == nil {
			return fmt.Errorf("cluster %s: %w", clusterID, ErrNotFound)
		}
		n := first[Node](t.r(), tNodes, "id", clusterID, id)
		if n == nil {
			return fmt.Errorf("node %s of cluster %s: %w", id, old.Name, ErrNotFound)
		}
		c := *old
		c.DeletedNodes = append(slices.Clone(c.DeletedNodes), id)
		if over := len(c.DeletedNodes) - MaxDeletedNodes; over > 0 {
			c.DeletedNodes = c.DeletedNodes[over:]
		}
		notID := func(x string) bool { return x == id }
		c.CordonedNodes = slices.DeleteFunc(slices.Clone(c.CordonedNodes), notID)
		c.DrainedNodes = slices.DeleteFunc(slices.Clone(c.DrainedNodes), notID)
		t.put(tClusters, KindCluster, c.ID, &c, true)
		t.del(tNodes, KindNode, nodeID(clusterID, id), n)
		t.net = true // a peer went away; this also wakes the cluster's watch
		return nil
	})
}

// deleted reports whether an admin deleted the cluster's node id.
func (c *Cluster) deleted(id string) bool { return slices.Contains(c.DeletedNodes, id) }
