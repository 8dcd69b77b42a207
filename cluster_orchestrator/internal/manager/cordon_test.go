package manager

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

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

	// Drain a (b uncordoned): one at a time, each new copy running before
	// the old one stops; the instance's status is the old copy's until then.
	m.SetNodeModes(nil, []string{a})
	reconcile(t, m)
	if w := where(); w["svc.0"] != a+" RUNNING" || w["svc.1"] != a+" RUNNING" {
		t.Fatalf("first drain step: %v; want both still running on a", w)
	}
	keys := func(d wire.NodeDesired) string {
		var ks []string
		for _, in := range d.Instances {
			ks = append(ks, in.Key)
		}
		return strings.Join(ks, ",") + " removed " + strings.Join(d.Removed, ",")
	}
	if got := keys(pub.desired[b]); got != "svc.0 removed " {
		t.Errorf("b's desired set: %s; want svc.0", got)
	}
	if got := keys(pub.desired[a]); got != "svc.0,svc.1 removed " {
		t.Errorf("a's desired set: %s; want svc.0 kept while its copy on b starts", got)
	}
	running(a, "svc.0", "svc.1") // the old copy's reports are no contradiction
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: b, Full: true, Node: wire.NodeInfo{Active: true, Arch: "amd64",
		Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}},
		Instances: []wire.InstanceStatus{{Key: "svc.0", Status: wire.StatusCreating}}})
	reconcile(t, m)
	if w := where(); w["svc.0"] != a+" RUNNING" || w["svc.1"] != a+" RUNNING" {
		t.Fatalf("svc.1 moved before svc.0 runs on b, or svc.0 not running on a: %v", w)
	}
	if st := m.Statuses(); !slices.ContainsFunc(st, func(s wire.InstanceStatus) bool {
		return s.Key == "svc.0" && s.Detail == "moving off drained node a: its copy on node b is CREATING"
	}) {
		t.Errorf("statuses while svc.0 moves: %+v", st)
	}
	running(b, "svc.0")
	reconcile(t, m)
	if w := where(); w["svc.0"] != b+" RUNNING" || w["svc.1"] != a+" RUNNING" {
		t.Fatalf("second drain step: %v; want svc.0 on b, svc.1 still on a", w)
	}
	if got := keys(pub.desired[a]); got != "svc.1 removed svc.0" {
		t.Errorf("a's desired set once svc.0 runs on b: %s", got)
	}
	if got := keys(pub.desired[b]); got != "svc.0,svc.1 removed " {
		t.Errorf("b's desired set: %s; want svc.1 started there too", got)
	}
	running(b, "svc.0", "svc.1")
	reconcile(t, m)
	if w := where(); w["svc.0"] != b+" RUNNING" || w["svc.1"] != b+" RUNNING" {
		t.Fatalf("after the drain: %v; want both on b", w)
	}
	evs := m.TakeEvents()
	for _, want := range []string{"node a is drained by an admin: starting a copy on another node", "runs on node b: its copy on drained node a is stopped"} {
		if !slices.ContainsFunc(evs, func(e wire.Event) bool { return e.Key == "svc.1" && strings.Contains(e.Message, want) }) {
			t.Errorf("no event %q for svc.1 in %+v", want, evs)
		}
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

func TestMoveStep(t *testing.T) {
	for _, c := range []struct {
		status  string
		elapsed time.Duration
		want    int
	}{
		{"", 0, moveWait},
		{wire.StatusScheduled, time.Minute, moveWait},
		{wire.StatusCreating, time.Minute, moveWait},
		{wire.StatusFailed, time.Minute, moveWait}, // its node restarts it
		{wire.StatusRunning, 0, moveDone},
		{wire.StatusCompleted, time.Second, moveDone},
		{wire.StatusCreating, 2 * time.Minute, moveTimeout},
		{"", 3 * time.Minute, moveTimeout},
		{wire.StatusRunning, 3 * time.Minute, moveDone},
	} {
		if got := moveStep(wire.InstanceStatus{Status: c.status}, c.elapsed, 2*time.Minute); got != c.want {
			t.Errorf("moveStep(%q, %s) = %d, want %d", c.status, c.elapsed, got, c.want)
		}
	}
}

// TestDrainTimeout: a new copy that does not run within the drain timeout
// does not keep the old one forever: it is stopped, with an event saying
// so, and the instance's status is the new copy's.
func TestDrainTimeout(t *testing.T) {
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m, err := New(context.Background(), Config{ClusterName: "c1", Grace: time.Hour, Tick: time.Second, DrainTimeout: 50 * time.Millisecond},
		state.NewMemory(), pub, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a := join(t, m, "a")
	m.SetDesired([]wire.InstanceSpec{{Key: "svc.0", ServiceID: "svc", Virtualization: "container", Code: "img",
		Resources: wire.Resources{MilliCPU: 500, MemoryMB: 64}}}, nil)
	reconcile(t, m)
	info := wire.NodeInfo{Active: true, Arch: "amd64", Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: a, Full: true, Node: info,
		Instances: []wire.InstanceStatus{{Key: "svc.0", Status: wire.StatusRunning}}})
	b := join(t, m, "b")
	m.SetNodeModes(nil, []string{a})
	reconcile(t, m)
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: b, Full: true, Node: info,
		Instances: []wire.InstanceStatus{{Key: "svc.0", Status: wire.StatusCreating}}})
	if st := m.Statuses(); st[0].NodeID != a || st[0].Status != wire.StatusRunning {
		t.Fatalf("before the timeout: %+v", st)
	}
	time.Sleep(60 * time.Millisecond)
	reconcile(t, m)
	if st := m.Statuses(); st[0].NodeID != b || st[0].Status != wire.StatusCreating {
		t.Fatalf("after the timeout: %+v; want b's CREATING copy", st)
	}
	if d := pub.desired[a]; len(d.Instances) != 0 || !slices.Contains(d.Removed, "svc.0") {
		t.Errorf("a's desired set after the timeout: %+v", d)
	}
	if evs := m.TakeEvents(); !slices.ContainsFunc(evs, func(e wire.Event) bool {
		return strings.Contains(e.Message, "is not RUNNING after 50ms (CREATING): the copy on drained node a is stopped anyway")
	}) {
		t.Errorf("no timeout event in %+v", evs)
	}
}
