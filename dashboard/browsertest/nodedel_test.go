package browsertest

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestDeleteNode: an admin deletes a worker node from its page; after the
// confirmation the dashboard goes back to the infrastructure, which no
// longer lists it, and the root no longer knows it.
func TestDeleteNode(t *testing.T) {
	s := startStack(t)
	join := strings.TrimSpace(readFile(t, filepath.Join(s.dataDir, "cluster-join-token")))
	var reg wire.ClusterRegisterResponse
	if code := s.apiWith(join, "POST", "/api/cluster/register", wire.ClusterRegisterRequest{Version: wire.Version, Name: "edge"}, &reg); code != http.StatusOK {
		t.Fatalf("register a cluster: %d", code)
	}
	node := func(name string) wire.NodeInfo {
		return wire.NodeInfo{ID: name + "-id", Name: name, Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
			Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}
	}
	sync := wire.ClusterSync{Version: wire.Version, Delta: true, Nodes: []wire.NodeInfo{node("keep"), node("doomed")}}
	if code := s.apiWith(reg.Credential, "POST", "/api/cluster/sync", sync, nil); code != http.StatusOK {
		t.Fatalf("sync: %d", code)
	}
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/infra/" + reg.ClusterID + "/doomed-id")
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
