package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
)

// TestDeletedNodeIsRevoked: an admin deletes a node that runs an instance.
// Within 5 s its cluster drops its broker connection (the node's reports
// stop), the root no longer lists it, its instance runs on the other node,
// and the deleted node, still running, cannot get back in with its
// credential: its log says it was deleted.
func TestDeletedNodeIsRevoked(t *testing.T) {
	s := newSystem(t)
	c := s.addCluster("edge", "")
	a := s.addNode(c, "a", 41, 1024, c.nodeToken)
	s.waitNodes(map[string]int{"edge": 1})
	ids := s.app("moving", map[string]any{"microservice_name": "web", "memory": 16})
	s.scaleUp(ids["web"])
	before := s.api.waitInstance(ids["web"], 0, 2*time.Minute, "running", running)
	b := s.addNode(c, "b", 42, 1024, c.nodeToken)
	s.waitNodes(map[string]int{"edge": 2})
	if before.NodeName != a.name {
		t.Fatalf("the instance runs on %s, want %s (the only node then)", before.NodeName, a.name)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	deleted := time.Now()
	if err := s.api.client().DeleteNode(ctx, "edge", a.name); err != nil {
		t.Fatalf("delete node %s: %v", a.name, err)
	}
	if err := c.proc.WaitOutput(ctx, 5*time.Second, "mqtt client disconnected by the cluster"); err != nil {
		t.Errorf("the cluster did not drop the deleted node's broker connection within 5 s: %v", err)
	} else {
		t.Logf("the deleted node was disconnected %s after the delete", time.Since(deleted).Round(time.Millisecond))
	}
	if err := a.proc.WaitOutput(ctx, 5*time.Second, "mqtt connection lost"); err != nil {
		t.Errorf("the deleted node did not lose its broker connection within 5 s: %v", err)
	}
	// Its reports are not taken: the root lists only b, and still does a
	// few report intervals later.
	s.waitNodes(map[string]int{"edge": 1})
	time.Sleep(3 * time.Second)
	var cls []api.Cluster
	s.api.must("GET", "/api/clusters", nil, &cls)
	if len(cls) != 1 || len(cls[0].Nodes) != 1 || cls[0].Nodes[0].Name != b.name {
		t.Errorf("after the delete the root lists %+v; want only node %s", cls, b.name)
	}
	moved := s.api.waitInstance(ids["web"], 0, time.Minute, "running on "+b.name, func(in api.Instance) bool {
		return running(in) && in.NodeName == b.name
	})
	t.Logf("the instance runs on %s %s after the delete", moved.NodeName, time.Since(deleted).Round(time.Millisecond))

	// The deleted node, still running, tries to get back in with its
	// credential and is refused for good.
	if err := a.proc.WaitOutput(ctx, 20*time.Second, "was deleted by an admin"); err != nil {
		t.Errorf("the deleted node's log does not say it was deleted: %v", err)
	}
	if !strings.Contains(c.proc.Output(), "node registration refused: the node was deleted") {
		t.Errorf("the cluster did not log the refused registration of the deleted node")
	}
}
