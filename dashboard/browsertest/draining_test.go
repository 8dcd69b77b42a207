package browsertest

import (
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestDrainingProgress: a drained node with an instance still on it shows
// DRAINING with how many are left, on its page and in the infrastructure
// list, and DRAINED once its cluster reports the instance on another node
// (issue 23, item 3).
func TestDrainingProgress(t *testing.T) {
	s := startStack(t)
	nodes := []wire.NodeInfo{workerNode("w1"), workerNode("w2")}
	reg := s.registerCluster("edge", nodes...)
	_, svc := s.placedNginx(reg.ClusterID, 1)
	key := wire.InstanceKey(svc, 0)
	s.syncCluster(reg, nodes, wire.InstanceStatus{Key: key, Status: wire.StatusRunning, NodeID: "w1-id", Node: "w1"})
	if code := s.api("POST", "/api/clusters/edge/nodes/w1/drain", nil, nil); code != 200 {
		t.Fatalf("drain: %d", code)
	}

	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/infra/" + reg.ClusterID + "/w1-id")
	b.WaitText("main .facts", "DRAINING")
	b.WaitText("main .facts", "moving its instances elsewhere, one at a time (1 left)")
	b.WaitJS("no Drain button while draining", `!document.querySelector('[data-action="drain-node"]')`)
	b.Screenshot("draining")

	// The cluster's move: the new copy runs on w2, the old one is gone.
	s.syncCluster(reg, nodes, wire.InstanceStatus{Key: key, Status: wire.StatusRunning, NodeID: "w2-id", Node: "w2"})
	b.WaitText("main .facts", "DRAINED")
	b.WaitText("main .facts", "no instance left on it")
	b.Screenshot("drained")
	b.Open("#/infra")
	b.WaitText(`main [data-cluster="edge"] tr[data-row]`, "DRAINED")
}
