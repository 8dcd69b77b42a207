package browsertest

import (
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestTopology: the topology page shows each node of each cluster packed
// with the instances placed on it, and those placed nowhere apart (issue
// 23, item 3). Its screenshot is kept as an artifact.
func TestTopology(t *testing.T) {
	s := startStack(t)
	w1, w2 := workerNode("w1"), workerNode("w2")
	reg := s.registerCluster("edge", w1, w2)
	_, svc := s.placedNginx(reg.ClusterID, 3)
	// The cluster placed #0 and #2 on w1, #1 on w2.
	st := func(n int, node wire.NodeInfo) wire.InstanceStatus {
		return wire.InstanceStatus{Key: wire.InstanceKey(svc, n), Status: wire.StatusRunning, NodeID: node.ID, Node: node.Name}
	}
	s.syncCluster(reg, []wire.NodeInfo{w1, w2}, st(0, w1), st(1, w2), st(2, w1))
	s.api("POST", "/api/clusters/edge/nodes/w2/cordon", nil, nil)

	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/infra")
	b.Click(`[data-action="topology"]`)
	b.WaitText("main h1", "Topology")
	b.WaitText(`.topo-node[data-node="w1"]`, "nginx/nginx #2")
	var nodes map[string][]string
	b.EvalInto(`Object.fromEntries([...document.querySelectorAll(".topo-node")].map((n) =>
		[n.dataset.node, [...n.querySelectorAll(".topo-inst")].map((i) => i.textContent)]))`, &nodes)
	want := map[string]string{"w1": "RUNNING nginx/nginx #0|RUNNING nginx/nginx #2", "w2": "RUNNING nginx/nginx #1"}
	for n, w := range want {
		if got := strings.Join(nodes[n], "|"); got != w {
			t.Errorf("node %s shows %q, want %q", n, got, w)
		}
	}
	b.WaitText(`.topo-node[data-node="w2"]`, "CORDONED")
	b.Screenshot("")
}
