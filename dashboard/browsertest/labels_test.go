package browsertest

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestNodeLabels: a node's labels, as its cluster reports them, are on
// its page; a label the root refuses is not.
func TestNodeLabels(t *testing.T) {
	s := startStack(t)
	cam, bad := fakeNode("cam"), fakeNode("bad")
	cam.Labels, bad.Labels = map[string]string{"zone": "north", "camera": "yes"}, map[string]string{"no space": "x"}
	clusterID := s.fakeCluster("edge", cam, bad)
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

// fakeNode is an active amd64 container node called name (id name-id).
func fakeNode(name string) wire.NodeInfo {
	return wire.NodeInfo{ID: name + "-id", Name: name, Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
		Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}
}

// fakeCluster registers a cluster called name with the default join token
// and reports its nodes as a cluster does; it returns the cluster's id.
func (s *stack) fakeCluster(name string, nodes ...wire.NodeInfo) string {
	s.t.Helper()
	join := strings.TrimSpace(readFile(s.t, filepath.Join(s.dataDir, "cluster-join-token")))
	var reg wire.ClusterRegisterResponse
	if code := s.apiWith(join, "POST", "/api/cluster/register", wire.ClusterRegisterRequest{Version: wire.Version, Name: name}, &reg); code != http.StatusOK {
		s.t.Fatalf("register a cluster: %d", code)
	}
	sync := wire.ClusterSync{Version: wire.Version, Delta: true, Nodes: nodes}
	if code := s.apiWith(reg.Credential, "POST", "/api/cluster/sync", sync, nil); code != http.StatusOK {
		s.t.Fatalf("sync: %d", code)
	}
	return reg.ClusterID
}
