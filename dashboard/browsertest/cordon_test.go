package browsertest

import (
	"testing"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestCordonDrainNode: an admin cordons, uncordons and drains a node from
// its page; the page and the infrastructure show its mode, the root
// records it and tells the cluster with its desired set (issue 23, item 3).
func TestCordonDrainNode(t *testing.T) {
	s := startStack(t)
	reg := s.registerCluster("edge", workerNode("w1"), workerNode("w2"))
	mode := func() string {
		var cls []api.Cluster
		s.api("GET", "/api/clusters", nil, &cls)
		for _, n := range cls[0].Nodes {
			if n.Name == "w1" {
				return n.Mode
			}
		}
		return "?"
	}
	desired := func() wire.ClusterDesired {
		var d wire.ClusterDesired
		s.apiWith(reg.Credential, "GET", "/api/cluster/desired", nil, &d)
		return d
	}

	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/infra/" + reg.ClusterID + "/w1-id")
	b.WaitText("main h1", "w1")
	b.WaitText("main .facts", "takes new instances")
	b.Click(`[data-action="cordon-node"]`)
	b.WaitText("main .facts", "CORDONED")
	if m, d := mode(), desired(); m != "cordoned" || len(d.CordonedNodes) != 1 || d.CordonedNodes[0] != "w1-id" {
		t.Errorf("after Cordon: mode %q, desired cordoned %v", m, d.CordonedNodes)
	}
	b.Screenshot("cordoned")
	b.Click(`[data-action="uncordon-node"]`)
	b.WaitText("main .facts", "takes new instances")
	if m := mode(); m != "" {
		t.Errorf("after Uncordon: mode %q", m)
	}
	b.Click(`[data-action="drain-node"]`)
	b.Visible("dialog.modal[open]")
	b.WaitText("dialog.modal", "Drain node w1?")
	b.Click("dialog.modal [data-confirm]")
	b.WaitText("main .facts", "DRAINED")
	b.WaitText("main .facts", "no instance left on it")
	if m, d := mode(), desired(); m != "drained" || len(d.DrainedNodes) != 1 || len(d.CordonedNodes) != 0 {
		t.Errorf("after Drain: mode %q, desired cordoned %v drained %v", m, d.CordonedNodes, d.DrainedNodes)
	}
	b.Screenshot("drained")
	b.Open("#/infra")
	b.WaitText(`main [data-cluster="edge"] tr[data-row]`, "DRAINED")
	b.Screenshot("infra")
}
