package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/usage"
)

// nodeUsageKey is the key of a node's ring (instances use their keys).
func nodeUsageKey(clusterID, nodeID string) string { return "node " + clusterID + "/" + nodeID }

// takeUsage records the usage figures a cluster's sync carries: of its
// active nodes, and of the running instances assigned to it.
func (s *Server) takeUsage(cl *state.Cluster, req *wire.ClusterSync) {
	now := time.Now()
	s.usage.Prune(now)
	for _, n := range req.Nodes {
		if n.Active {
			s.usage.Add(nodeUsageKey(cl.ID, n.ID), now, n.CPUPercent, n.MemoryPercent)
		}
	}
	var sn *state.Snapshot
	for _, st := range req.Instances {
		if st.Status != wire.StatusRunning || st.CPUPercent == 0 && st.MemoryMB == 0 {
			continue
		}
		if sn == nil {
			sn = s.state.Snapshot()
		}
		if in := sn.Instance(st.Key); in != nil && in.ClusterID == cl.ID {
			s.usage.Add(st.Key, now, st.CPUPercent, float64(st.MemoryMB))
		}
	}
}

// instanceUsage answers an instance's CPU (percent of a core) and memory
// (MB) over the last hour, a sample a minute.
func (s *Server) instanceUsage(c echo.Context) error {
	_, in, err := s.ownedInstance(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"instance_number": in.Number, "step_s": int(usage.Step / time.Second),
		"samples": s.usage.Of(in.Key, time.Now())})
}

// nodeUsage answers a node's CPU and memory (both in percent) over the
// last hour, a sample a minute.
func (s *Server) nodeUsage(c echo.Context) error {
	cl, node := pathNode(c, s.state.Snapshot())
	if node == nil {
		return errNotFound
	}
	return c.JSON(http.StatusOK, map[string]any{"node": node.Name, "step_s": int(usage.Step / time.Second),
		"samples": s.usage.Of(nodeUsageKey(cl.ID, node.ID), time.Now())})
}
