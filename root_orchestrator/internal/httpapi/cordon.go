package httpapi

import (
	"fmt"

	"github.com/labstack/echo/v4"

	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// nodeModes are the cluster's cordoned and drained nodes, for its desired
// sets.
func nodeModes(sn *state.Snapshot, clusterID string) (cordoned, drained []string) {
	if c := sn.Cluster(clusterID); c != nil {
		return c.CordonedNodes, c.DrainedNodes
	}
	return nil, nil
}

// setNodeMode answers an admin's cordon, drain or uncordon of a node
// (cluster and node by id or name): the root records it and tells the
// cluster with its next desired set.
func (s *Server) setNodeMode(mode state.NodeMode) echo.HandlerFunc {
	return func(c echo.Context) error {
		cl, node, err := s.writeNode(c, func(clusterID, nodeID string) (state.Ticket, error) {
			return s.state.SetNodeMode(clusterID, nodeID, mode)
		})
		if err != nil {
			return err
		}
		var msg string
		switch mode {
		case state.Cordoned:
			msg = fmt.Sprintf("node %s of cluster %s cordoned: nothing new is placed on it; its instances stay", node.Name, cl.Name)
		case state.Drained:
			msg = fmt.Sprintf("node %s of cluster %s is drained: nothing new is placed on it, and its cluster moves its instances to its other nodes one at a time", node.Name, cl.Name)
		default:
			msg = fmt.Sprintf("node %s of cluster %s takes placements again", node.Name, cl.Name)
		}
		s.log.Info("node mode set", "cluster", cl.Name, "node", node.Name, "id", node.ID, "mode", modeName(mode), "by", caller(c).Username)
		return message(c, msg)
	}
}

func modeName(m state.NodeMode) string {
	if m == state.Schedulable {
		return "schedulable"
	}
	return string(m)
}
