package engine

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

type fakeProbe struct {
	mu      sync.Mutex
	peers   []wire.NodeNetwork
	cluster string
	wanted  []string
	rtt     map[string]time.Duration
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
func (f *fakeProbe) SetWanted(ids []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wanted = ids
}
func (f *fakeProbe) Estimates(ids []string) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, id := range ids {
		if d, ok := f.rtt[id]; ok {
			out[id] = d
		}
	}
	return out
}

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

// TestClosestRTTs: the nodes behind closest routes (not this one, not
// round-robin ones) are probed, and the net manager gets their coarsened
// round trips.
func TestClosestRTTs(t *testing.T) {
	fn := startFakeNet(t)
	fp := &fakeProbe{rtt: map[string]time.Duration{"n2": 3400 * time.Microsecond, "n3": 47 * time.Millisecond, "n9": 212 * time.Millisecond}}
	e := newTestEngine(Config{Name: "n1", Address: "192.0.2.10", NetSocket: fn.socketPath, Probe: fp}, newFakeRuntime("container"))
	e.nodeID = "n1"
	svcs := []wire.ServiceRoute{
		{IP: "10.30.0.1", Mode: wire.RouteClosest, Backends: []wire.Backend{{IP: "10.64.1.2", NodeID: "n1"}, {IP: "10.64.2.2", NodeID: "n2"}, {IP: "10.64.3.2", NodeID: "n3"}, {IP: "10.64.4.2", NodeID: "n4"}}},
		{IP: "10.30.0.2", Mode: wire.RouteClosest, Backends: []wire.Backend{{IP: "10.65.1.2", NodeID: "n9"}}},
		{IP: "10.30.0.3", Mode: wire.RouteRoundRobin, Backends: []wire.Backend{{IP: "10.64.5.2", NodeID: "n5"}}},
	}
	e.want(wire.NodeDesired{Generation: 1, ClusterID: "c1", Subnet: "10.64.1.0/24", Network: wire.Network{Services: svcs}})
	e.settleOnce(t)
	fp.mu.Lock()
	wanted := fp.wanted
	fp.mu.Unlock()
	if !slices.Equal(wanted, []string{"n2", "n3", "n4", "n9"}) {
		t.Errorf("wanted %v, want the closest routes' other nodes n2 n3 n4 n9", wanted)
	}
	fn.mu.Lock()
	c := fn.configs[len(fn.configs)-1]
	fn.mu.Unlock()
	if want := map[string]int{"n2": 3, "n3": 45, "n9": 200}; !maps.Equal(c.RTTMS, want) {
		t.Errorf("net manager got round trips %v, want %v", c.RTTMS, want)
	}
}
