package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

type fakeProbe struct {
	mu      sync.Mutex
	peers   []wire.NodeNetwork
	cluster string
}

func (f *fakeProbe) SetPeers(p []wire.NodeNetwork, c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers, f.cluster = p, c
}
func (f *fakeProbe) Coordinate() *wire.Coordinate {
	return &wire.Coordinate{Vec: []float64{0.01}, Height: 1e-5}
}
func (f *fakeProbe) Port() int { return 51822 }

// TestProbeWiring: the prober gets the desired set's peers, and the node's
// status carries its coordinate, probe port and location.
func TestProbeWiring(t *testing.T) {
	fn := startFakeNet(t)
	fp := &fakeProbe{}
	e := newTestEngine(Config{Name: "n1", Address: "192.0.2.10", NetSocket: fn.socketPath, Probe: fp, Location: "48.1,11.5"},
		newFakeRuntime("container"))
	e.nodeID = "node-1"
	peers := []wire.NodeNetwork{{NodeID: "node-2", ClusterID: "c1", PublicIP: "192.0.2.11", ProbePort: 51822}}
	e.want(wire.NodeDesired{Generation: 1, ClusterID: "c1", Subnet: "10.64.1.0/24", Network: wire.Network{Peers: peers}})
	e.settleOnce(t)
	fp.mu.Lock()
	got, cluster := fp.peers, fp.cluster
	fp.mu.Unlock()
	if len(got) != 1 || got[0].NodeID != "node-2" || cluster != "c1" {
		t.Fatalf("prober got peers %+v in %q; want node-2 in c1", got, cluster)
	}
	info := e.nodeInfo(context.Background())
	if info.Coordinate == nil || info.Location != "48.1,11.5" || info.Network == nil || info.Network.ProbePort != 51822 {
		t.Fatalf("node info coordinate %+v, location %q, network %+v", info.Coordinate, info.Location, info.Network)
	}
}
