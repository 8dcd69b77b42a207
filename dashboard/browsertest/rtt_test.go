package browsertest

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestNodeRoundTrips: a node's page shows its location and its estimated
// round trips to its cluster's centre and to the other nodes, nearest
// first.
func TestNodeRoundTrips(t *testing.T) {
	s := startStack(t)
	join := strings.TrimSpace(readFile(t, filepath.Join(s.dataDir, "cluster-join-token")))
	var reg wire.ClusterRegisterResponse
	if code := s.apiWith(join, "POST", "/api/cluster/register", wire.ClusterRegisterRequest{Version: wire.Version, Name: "edge", Location: "munich"}, &reg); code != http.StatusOK {
		t.Fatalf("register a cluster: %d", code)
	}
	node := func(name string, ms float64, location string) wire.NodeInfo {
		return wire.NodeInfo{ID: name + "-id", Name: name, Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
			Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}, Location: location,
			Coordinate: &wire.Coordinate{Vec: []float64{ms / 1000, 0}}}
	}
	sync := wire.ClusterSync{Version: wire.Version, Delta: true, Coordinate: &wire.Coordinate{Vec: []float64{0.005, 0}},
		Nodes: []wire.NodeInfo{node("here", 0, "48.1374,11.5755"), node("far", 75, ""), node("near", 12.5, "")}}
	if code := s.apiWith(reg.Credential, "POST", "/api/cluster/sync", sync, nil); code != http.StatusOK {
		t.Fatalf("sync: %d", code)
	}
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/infra/" + reg.ClusterID + "/here-id")
	b.WaitText("main h1", "here")
	b.WaitText("main .node-page", "48.1374,11.5755")
	b.WaitText("main .rtts", "cluster edge ≈ 5.0 ms · near ≈ 12.5 ms · far ≈ 75.0 ms")
	b.Open("#/infra/" + reg.ClusterID + "/far-id")
	b.WaitText("main h1", "far")
	b.WaitText("main .node-page", "munich") // its cluster's location
	b.Screenshot("")
}
