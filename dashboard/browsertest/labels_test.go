package browsertest

import (
	"testing"
)

// TestNodeLabels: a node's labels, as its cluster reports them, are on
// its page; a label the root refuses is not.
func TestNodeLabels(t *testing.T) {
	s := startStack(t)
	cam, bad := workerNode("cam"), workerNode("bad")
	cam.Labels, bad.Labels = map[string]string{"zone": "north", "camera": "yes"}, map[string]string{"no space": "x"}
	clusterID := s.registerCluster("edge", cam, bad).ClusterID
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/infra/" + clusterID + "/cam-id")
	b.WaitText("main h1", "cam")
	b.WaitText(".node-labels", "camera=yes")
	b.WaitText(".node-labels", "zone=north")
	b.Screenshot("")
	b.Open("#/infra/" + clusterID + "/bad-id")
	b.WaitText("main h1", "bad")
	if got, err := b.Eval(`document.querySelector(".node-labels").textContent`); err != nil || got != `""` {
		t.Errorf("labels of the node whose labels were refused: %q, %v", got, err)
	}
}
