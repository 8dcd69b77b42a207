package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
)

// TestDrainMovesInstances: node a is drained: its instance moves to b and
// runs there, while a stays registered, active and drained (issue 23,
// item 3; cordon alone is tested in the manager's and the root's tests).
func TestDrainMovesInstances(t *testing.T) {
	s := newSystem(t)
	c := s.addCluster("edge", "")
	a := s.addNode(c, "a", 43, 1024, c.nodeToken)
	s.waitNodes(map[string]int{"edge": 1})
	ids := s.app("draining", map[string]any{"microservice_name": "web", "memory": 16})
	s.scaleUp(ids["web"])
	first := s.api.waitInstance(ids["web"], 0, 2*time.Minute, "running", running)
	if first.NodeName != a.name {
		t.Fatalf("instance 0 runs on %s, want %s (the only node then)", first.NodeName, a.name)
	}
	b := s.addNode(c, "b", 44, 1024, c.nodeToken)
	s.waitNodes(map[string]int{"edge": 2})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := s.api.client()
	drained := time.Now()
	if _, err := cl.SetNodeMode(ctx, "edge", a.name, api.Drain); err != nil {
		t.Fatalf("drain %s: %v", a.name, err)
	}
	in := s.api.waitInstance(ids["web"], 0, 2*time.Minute, "running on "+b.name, func(in api.Instance) bool {
		return running(in) && in.NodeName == b.name
	})
	t.Logf("the instance runs on %s %s after the drain", in.NodeName, time.Since(drained).Round(time.Millisecond))
	var cls []api.Cluster
	s.api.must("GET", "/api/clusters", nil, &cls)
	for _, n := range cls[0].Nodes {
		if n.Name == a.name && (n.Mode != "drained" || !n.Active) {
			t.Errorf("the drained node: %+v; want active and drained", n)
		}
	}
}
