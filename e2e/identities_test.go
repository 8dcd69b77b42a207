package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestDeletedClusterIsRevoked: a second host under a node's name is
// refused. An admin revokes the join token the clusters joined with and
// deletes a running cluster. Its credential stops working
// at once (the cluster logs the refusal within 5 s), it cannot join again,
// and its instance is placed on the other cluster and runs there.
func TestDeletedClusterIsRevoked(t *testing.T) {
	s := newSystem(t)
	doomed := s.addCluster("doomed", "")
	s.addNode(doomed, "d1", 41, 1024, doomed.nodeToken)
	s.waitNodes(map[string]int{"doomed": 1})
	ids := s.app("moving", map[string]any{"microservice_name": "web", "memory": 16})
	s.scaleUp(ids["web"])
	before := s.api.waitInstance(ids["web"], 0, 2*time.Minute, "running", running)
	keeper := s.addCluster("keeper", "")
	k1 := s.addNode(keeper, "k1", 42, 1024, keeper.nodeToken)
	s.waitNodes(map[string]int{"doomed": 1, "keeper": 1})

	// Another host with k1's name (and the cluster's node join token) is
	// refused and told to use --name; k1 stays.
	impostor := bin.MustStartNode(t, testharness.NodeOptions{Name: k1.name, Label: "impostor", Host: s.net.MustAddHost(t, 43),
		ClusterURL: keeper.nodeURL, Token: keeper.nodeToken, Namespace: s.ctrNS, Registry: s.registry, MemoryMB: 1024})
	testharness.WaitFor(t, 30*time.Second, "the second host named "+k1.name+" refused", func() (bool, string) {
		out := impostor.Engine.Output()
		return strings.Contains(out, "thicket-node failed") && strings.Contains(out, "is taken by a registered node") &&
			strings.Contains(out, "start it with --name <unique-name>"), out
	})
	if !strings.Contains(keeper.proc.Output(), "node registration refused: name taken") {
		t.Errorf("the cluster did not log the refused takeover")
	}
	s.waitNodes(map[string]int{"keeper": 1})
	var keeperID string
	var cls []api.Cluster
	s.api.must("GET", "/api/clusters", nil, &cls)
	for _, c := range cls {
		if c.ClusterName == "keeper" {
			keeperID = c.ID
		}
		if c.ClusterName == "doomed" && c.ID != before.ClusterID {
			t.Fatalf("the instance runs on cluster %s, not on doomed (%s)", before.ClusterID, c.ID)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := s.api.client()
	toks, err := cl.JoinTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		if err := cl.DeleteJoinToken(ctx, tk.ID); err != nil {
			t.Fatalf("revoke join token %s: %v", tk.ID, err)
		}
	}
	deleted := time.Now()
	if err := cl.DeleteCluster(ctx, "doomed"); err != nil {
		t.Fatalf("delete cluster doomed: %v", err)
	}
	if err := doomed.proc.WaitOutput(ctx, 5*time.Second, "the root refused the cluster credential"); err != nil {
		t.Errorf("the deleted cluster was not refused within 5 s: %v", err)
	} else {
		t.Logf("the deleted cluster was refused %s after the delete", time.Since(deleted).Round(time.Millisecond))
	}
	if err := doomed.proc.WaitOutput(ctx, 10*time.Second, "join token was refused"); err != nil {
		t.Errorf("the deleted cluster did not fail to join again with its revoked token: %v", err)
	}

	moved := s.api.waitInstance(ids["web"], 0, 2*time.Minute, "running on keeper", func(in api.Instance) bool {
		return running(in) && in.ClusterID == keeperID
	})
	if moved.NodeName == before.NodeName {
		t.Errorf("the instance still runs on node %s", moved.NodeName)
	}
	testharness.WaitFor(t, 10*time.Second, "only keeper listed", func() (bool, string) {
		s.api.must("GET", "/api/clusters", nil, &cls)
		var names []string
		for _, c := range cls {
			names = append(names, c.ClusterName)
		}
		return len(cls) == 1 && cls[0].ID == keeperID, strings.Join(names, ",")
	})
}
