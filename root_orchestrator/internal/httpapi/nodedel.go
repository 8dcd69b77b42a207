package httpapi

import (
	"errors"
	"fmt"

	"github.com/labstack/echo/v4"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// deletedNodes are the cluster's nodes an admin deleted, for its desired
// sets.
func deletedNodes(sn *state.Snapshot, clusterID string) []string {
	if c := sn.Cluster(clusterID); c != nil {
		return c.DeletedNodes
	}
	return nil
}

// clusterByIDOrName is the cluster of that id, else of that name.
func clusterByIDOrName(sn *state.Snapshot, v string) *state.Cluster {
	if cl := sn.Cluster(v); cl != nil {
		return cl
	}
	for _, x := range sn.Clusters() {
		if x.Name == v {
			return x
		}
	}
	return nil
}

// pathNode is the cluster and node the path names (:id, :node; each by id
// or name); node is nil when there is none.
func pathNode(c echo.Context, sn *state.Snapshot) (*state.Cluster, *wire.NodeInfo) {
	cl := clusterByIDOrName(sn, c.Param("id"))
	if cl == nil {
		return nil, nil
	}
	var node *wire.NodeInfo
	for _, n := range sn.Nodes(cl.ID) {
		if n.ID == c.Param("node") || (node == nil && n.Name == c.Param("node")) {
			node = &n.NodeInfo
		}
	}
	return cl, node
}

// writeNode applies write to the cluster and node the path names and waits
// until it is stored; an unknown cluster or node is errNotFound.
func (s *Server) writeNode(c echo.Context, write func(clusterID, nodeID string) (state.Ticket, error)) (*state.Cluster, *wire.NodeInfo, error) {
	cl, node := pathNode(c, s.state.Snapshot())
	if node == nil {
		return nil, nil, errNotFound
	}
	tk, err := write(cl.ID, node.ID)
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil, errNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	return cl, node, s.durable(c, tk)
}

// deleteNode is an admin's delete of a node (cluster and node by id or
// name): the root forgets it and tells its cluster through the desired
// set; the cluster revokes its MQTT credential, frees its subnet and
// places its instances on other nodes.
func (s *Server) deleteNode(c echo.Context) error {
	cl, node, err := s.writeNode(c, s.state.DeleteNode)
	if err != nil {
		return err
	}
	s.log.Info("node deleted", "cluster", cl.Name, "node", node.Name, "id", node.ID, "by", caller(c).Username)
	return message(c, fmt.Sprintf("node %s of cluster %s deleted; the cluster revokes its credential and places its instances elsewhere", node.Name, cl.Name))
}
