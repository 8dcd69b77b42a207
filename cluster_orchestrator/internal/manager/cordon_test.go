package manager

import (
	"slices"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestCordonAndDrain: nothing new is placed on a cordoned node; a drained
// node's instances move to the other node one at a time (the next when the
// one before runs there), its desired set drops them; one that fits
// nowhere else stays, with an event saying why; uncordoned, the node takes
// placements again.
func TestCordonAndDrain(t *testing.T) {
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m := newManager(t, state.NewMemory(), pub)
	a, b := join(t, m, "a"), join(t, m, "b")
	spec := func(k string, milli int64) wire.InstanceSpec {
		return wire.InstanceSpec{Key: k, ServiceID: "svc", Virtualization: "container", Code: "img",
			Resources: wire.Resources{MilliCPU: milli, MemoryMB: 64}}
	}
	where := func() map[string]string {
		out := map[string]string{}
		for _, st := range m.Statuses() {
			out[st.Key] = st.NodeID + " " + st.Status
		}
		return out
	}
	running := func(node string, keys ...string) {
		var sts []wire.InstanceStatus
		for _, k := range keys {
			sts = append(sts, wire.InstanceStatus{Key: k, Status: wire.StatusRunning})
		}
		m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: node, Full: true, Instances: sts, Node: wire.NodeInfo{Active: true,
			Arch: "amd64", Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}})
	}

	// Cordoned b: both go to a, though b is as empty.
	m.SetNodeModes([]string{b}, nil)
	m.SetDesired([]wire.InstanceSpec{spec("svc.0", 500), spec("svc.1", 500)}, nil)
	reconcile(t, m)
	if w := where(); w["svc.0"] != a+" SCHEDULED" || w["svc.1"] != a+" SCHEDULED" {
		t.Fatalf("with b cordoned: %v; want both on a", w)
	}
	running(a, "svc.0", "svc.1")

	// Drain a (b uncordoned): one at a time.
	m.SetNodeModes(nil, []string{a})
	reconcile(t, m)
	if w := where(); w["svc.0"] != b+" SCHEDULED" || w["svc.1"] != a+" RUNNING" {
		t.Fatalf("first drain step: %v; want svc.0 on b, svc.1 still on a", w)
	}
	if d := pub.desired[a]; len(d.Instances) != 1 || d.Instances[0].Key != "svc.1" || !slices.Contains(d.Removed, "svc.0") {
		t.Errorf("a's desired set: %+v; want svc.1 only, svc.0 removed", d)
	}
	reconcile(t, m)
	if w := where(); w["svc.1"] != a+" RUNNING" {
		t.Fatalf("svc.1 moved before svc.0 runs on b: %v", w)
	}
	running(b, "svc.0")
	reconcile(t, m)
	if w := where(); w["svc.0"] != b+" RUNNING" || w["svc.1"] != b+" SCHEDULED" {
		t.Fatalf("second drain step: %v; want both on b", w)
	}
	running(b, "svc.0", "svc.1")
	evs := m.TakeEvents()
	if !slices.ContainsFunc(evs, func(e wire.Event) bool {
		return e.Key == "svc.1" && strings.Contains(e.Message, "node a is drained by an admin: moving")
	}) {
		t.Errorf("no drain event for svc.1 in %+v", evs)
	}

	// Uncordoned, a takes placements again; one that fits only on a stays
	// there when a is drained.
	m.SetNodeModes(nil, nil)
	m.SetDesired([]wire.InstanceSpec{spec("svc.0", 500), spec("svc.1", 500), spec("svc.2", 1500)}, nil)
	reconcile(t, m)
	if w := where(); w["svc.2"] != a+" SCHEDULED" {
		t.Fatalf("uncordoned: %v; want svc.2 on a", w)
	}
	running(a, "svc.2")
	m.SetNodeModes(nil, []string{a})
	reconcile(t, m)
	reconcile(t, m)
	if w := where(); w["svc.2"] != a+" RUNNING" {
		t.Errorf("svc.2 fits nowhere else: %v; want it left running on a", w)
	}
	evs = m.TakeEvents()
	n := 0
	for _, e := range evs {
		if e.Key == "svc.2" && strings.Contains(e.Message, "no other node has room") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d events saying svc.2 cannot move (want 1, not one per pass): %+v", n, evs)
	}
}
