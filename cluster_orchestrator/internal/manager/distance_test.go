package manager

import (
	"context"
	"testing"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestLatencyToServicePlacement: the cluster places an instance that must
// be within 20 ms of its application's db on a node near the node running
// db, by the coordinates its nodes report; a coordinate out of bounds is
// refused (the node then has none).
func TestLatencyToServicePlacement(t *testing.T) {
	m := newManager(t, state.NewMemory(), &recorder{desired: map[string]wire.NodeDesired{}})
	ctx := context.Background()
	at := map[string]float64{"n1": 0, "n2": 50, "n3": 10}
	ids := map[string]string{}
	for _, name := range []string{"n1", "n2", "n3"} {
		ids[name] = join(t, m, name)
		m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: ids[name], Node: wire.NodeInfo{Active: true, Arch: "amd64",
			Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048},
			Coordinate: &wire.Coordinate{Vec: []float64{at[name] / 1000, 0}}}})
	}
	spec := func(svc string, n int, cons ...wire.Constraint) wire.InstanceSpec {
		return wire.InstanceSpec{Key: wire.InstanceKey(svc, n), ServiceID: svc, InstanceNumber: n, ApplicationName: "shop",
			MicroserviceName: svc, Virtualization: "container", Code: "img", Resources: wire.Resources{MilliCPU: 100, MemoryMB: 1500},
			Constraints: cons}
	}
	// db takes most of n1; web must be within 20 ms of db: n3 (10 ms), not n2 (50 ms).
	m.SetDesired([]wire.InstanceSpec{
		spec("db", 0, wire.Constraint{Type: "direct", Cluster: "c1", Node: "n1"}),
		spec("web", 0, wire.Constraint{Type: "latency", Service: "db", Threshold: 20}),
	}, nil)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	on := map[string]string{}
	for _, st := range m.Statuses() {
		on[st.Key] = st.NodeID
	}
	if on[wire.InstanceKey("db", 0)] != ids["n1"] || on[wire.InstanceKey("web", 0)] != ids["n3"] {
		t.Fatalf("placed db on %s and web on %s; want n1 and n3 (%v)", on[wire.InstanceKey("db", 0)], on[wire.InstanceKey("web", 0)], ids)
	}
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: ids["n2"], Node: wire.NodeInfo{Active: true, Arch: "amd64",
		Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048},
		Coordinate: &wire.Coordinate{Vec: make([]float64, 9)}, Location: "48.1,11.5"}})
	for _, n := range m.Nodes() {
		if n.ID == ids["n2"] && (n.Coordinate != nil || n.Location != "48.1,11.5") {
			t.Errorf("n2 after a 9-dimensional coordinate: %+v, location %q", n.Coordinate, n.Location)
		}
	}
}
