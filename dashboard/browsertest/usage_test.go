package browsertest

import (
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestNodeUsageGraphs: a node's page draws its CPU and memory over the
// last hour as small graphs, from what its cluster reported (issue 23,
// item 5).
func TestNodeUsageGraphs(t *testing.T) {
	s := startStack(t)
	w1 := workerNode("w1")
	w1.CPUPercent, w1.MemoryPercent = 42, 64
	reg := s.registerCluster("edge", w1)
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/infra/" + reg.ClusterID + "/w1-id")
	b.WaitText(`[data-graph="CPU"]`, "42 %")
	b.WaitText(`[data-graph="Memory"]`, "64 %")
	var pts string
	b.EvalInto(`document.querySelector('[data-graph="CPU"] polyline').getAttribute("points")`, &pts)
	if len(strings.Fields(pts)) != 2 {
		t.Errorf("the CPU graph's points: %q; want one sample drawn as a line", pts)
	}
	b.Screenshot("")
}

// TestInstanceUsageGraphs: an instance's Events panel draws its CPU and
// memory over the last hour.
func TestInstanceUsageGraphs(t *testing.T) {
	s := startStack(t)
	node := workerNode("n1")
	reg := s.registerCluster("edge", node)
	a, svc := s.placedNginx(reg.ClusterID, 1)
	s.syncCluster(reg, []wire.NodeInfo{node}, wire.InstanceStatus{Key: wire.InstanceKey(svc, 0), Status: wire.StatusRunning,
		NodeID: node.ID, Node: node.Name, CPUPercent: 12.5, MemoryMB: 48})
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/apps/" + a.ID)
	b.WaitText(`.service tr[data-row="0"]`, "RUNNING")
	b.Click(`[data-action="events"]`)
	b.WaitText(`#instance-usage [data-graph="CPU"]`, "13 %")
	b.WaitText(`#instance-usage [data-graph="Memory"]`, "48 MB")
	b.Screenshot("")
}
