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
	join := strings.TrimSpace(readFile(t, filepath.Join(s.dataDir, "cluster-join-token")))
	var reg wire.ClusterRegisterResponse
	if code := s.apiWith(join, "POST", "/api/cluster/register", wire.ClusterRegisterRequest{Version: wire.Version, Name: "edge"}, &reg); code != http.StatusOK {
		t.Fatalf("register a cluster: %d", code)
	}
	node := func(name string, labels map[string]string) wire.NodeInfo {
		return wire.NodeInfo{ID: name + "-id", Name: name, Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
			Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}, Labels: labels}
	}
	sync := wire.ClusterSync{Version: wire.Version, Delta: true, Nodes: []wire.NodeInfo{
		node("cam", map[string]string{"zone": "north", "camera": "yes"}), node("bad", map[string]string{"no space": "x"})}}
	if code := s.apiWith(reg.Credential, "POST", "/api/cluster/sync", sync, nil); code != http.StatusOK {
		t.Fatalf("sync: %d", code)
	}
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/infra/" + reg.ClusterID + "/cam-id")
	b.WaitText("main h1", "cam")
	b.WaitText(".node-labels", "camera=yes")
	b.WaitText(".node-labels", "zone=north")
	b.Screenshot("")
	b.Open("#/infra/" + reg.ClusterID + "/bad-id")
	b.WaitText("main h1", "bad")
	if got, err := b.Eval(`document.querySelector(".node-labels").textContent`); err != nil || got != `""` {
		t.Errorf("labels of the node whose labels were refused: %q, %v", got, err)
	}
}
