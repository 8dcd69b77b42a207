package store

import (
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// TestNodeRecordLocation: a node's location and probe port are stored;
// its coordinate (usage-like) is not.
func TestNodeRecordLocation(t *testing.T) {
	n := &state.Node{ClusterID: "c1", NodeInfo: wire.NodeInfo{ID: "n1", Name: "edge", Location: "48.1,11.5",
		Coordinate: &wire.Coordinate{Vec: []float64{1}},
		Network:    &wire.NodeNetwork{Subnet: "10.64.1.0/24", VTEPMAC: "02:00:00:00:00:01", PublicIP: "192.0.2.1", PublicPort: 4789, ProbePort: 51822}}}
	got := toNodeRecord("c1/n1", n).model()
	if got.Location != "48.1,11.5" || got.Network == nil || got.Network.ProbePort != 51822 || got.Coordinate != nil {
		t.Fatalf("stored and read back: location %q, network %+v, coordinate %+v", got.Location, got.Network, got.Coordinate)
	}
}
