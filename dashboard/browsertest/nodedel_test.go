package browsertest

import (
	"testing"

	"github.com/thicket-edge/thicket/api"
)

// TestDeleteNode: an admin deletes a worker node from its page; after the
// confirmation the dashboard goes back to the infrastructure, which no
// longer lists it, and the root no longer knows it.
func TestDeleteNode(t *testing.T) {
	s := startStack(t)
	clusterID := s.registerCluster("edge", workerNode("keep"), workerNode("doomed")).ClusterID
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/infra/" + clusterID + "/doomed-id")
	b.WaitText("main h1", "doomed")
	b.Click(`[data-action="delete-node"]`)
	b.Visible("dialog.modal[open]")
	b.WaitText("dialog.modal", "Delete node doomed?")
	b.Click("dialog.modal [data-confirm]")
	b.WaitText("main h1", "Infrastructure")
	b.WaitText("main .table", "keep")
	b.WaitGone("main .table", "doomed")
	var cls []api.Cluster
	s.api("GET", "/api/clusters", nil, &cls)
	if len(cls) != 1 || len(cls[0].Nodes) != 1 || cls[0].Nodes[0].Name != "keep" {
		t.Errorf("after the delete the root has %+v", cls)
	}
	b.Screenshot("")
}
