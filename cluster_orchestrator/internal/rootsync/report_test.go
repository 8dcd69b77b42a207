package rootsync

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

func keysOf(sts []wire.InstanceStatus) []string {
	var out []string
	for _, s := range sts {
		out = append(out, s.Key)
	}
	return out
}

func idsOf(ns []wire.NodeInfo) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.ID)
	}
	return out
}

// TestReportedDeltas walks a cluster's syncs: everything first, then only
// what changed since the last acknowledged sync; usage figures alone at most
// every usageEvery; nodes that left by id; everything again after a resync.
func TestReportedDeltas(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	n1 := wire.NodeInfo{ID: "n1", Name: "n1", Active: true, CPUPercent: 10}
	n2 := wire.NodeInfo{ID: "n2", Name: "n2", Active: true}
	a := wire.InstanceStatus{Key: "s.0", Status: wire.StatusCreating, NodeID: "n1"}
	b := wire.InstanceStatus{Key: "s.1", Status: wire.StatusRunning, NodeID: "n2", CPUPercent: 3}
	var r reported

	type step struct {
		name      string
		at        time.Duration
		nodes     []wire.NodeInfo
		statuses  []wire.InstanceStatus
		wantEpoch string
		wantNodes []string
		wantGone  []string
		wantKeys  []string
	}
	running := a
	running.Status, running.InstanceIP = wire.StatusRunning, "10.64.1.2"
	busyN1, busyB := n1, b
	busyN1.CPUPercent, busyB.CPUPercent = 80, 50
	steps := []step{
		{"first sync: everything", 0, []wire.NodeInfo{n1, n2}, []wire.InstanceStatus{a, b}, "", []string{"n1", "n2"}, nil, []string{"s.0", "s.1"}},
		{"nothing changed", time.Second, []wire.NodeInfo{n1, n2}, []wire.InstanceStatus{a, b}, "E1", nil, nil, nil},
		{"one status changed", 2 * time.Second, []wire.NodeInfo{n1, n2}, []wire.InstanceStatus{running, b}, "E1", nil, nil, []string{"s.0"}},
		{"usage alone, soon after", 3 * time.Second, []wire.NodeInfo{busyN1, n2}, []wire.InstanceStatus{running, busyB}, "E1", nil, nil, nil},
		{"usage alone, later", 11 * time.Second, []wire.NodeInfo{busyN1, n2}, []wire.InstanceStatus{running, busyB}, "E1", []string{"n1"}, nil, []string{"s.1"}},
		{"a node left, an instance gone", 12 * time.Second, []wire.NodeInfo{busyN1}, []wire.InstanceStatus{running}, "E1", nil, []string{"n2"}, nil},
		{"the instance is back", 13 * time.Second, []wire.NodeInfo{busyN1}, []wire.InstanceStatus{running, busyB}, "E1", nil, nil, []string{"s.1"}},
	}
	for _, s := range steps {
		req, _ := r.next(s.nodes, s.statuses, t0.Add(s.at))
		if !req.Delta || req.Epoch != s.wantEpoch || !slices.Equal(idsOf(req.Nodes), s.wantNodes) ||
			!slices.Equal(req.GoneNodes, s.wantGone) || !slices.Equal(keysOf(req.Instances), s.wantKeys) {
			t.Fatalf("%s: sent epoch %q nodes %v gone %v statuses %v; want %q %v %v %v", s.name,
				req.Epoch, idsOf(req.Nodes), req.GoneNodes, keysOf(req.Instances), s.wantEpoch, s.wantNodes, s.wantGone, s.wantKeys)
		}
		r.acked(req, "E1", t0.Add(s.at))
	}

	// A sync that was not acknowledged is sent again in full next time.
	changed := running
	changed.Restarts = 1
	lost, _ := r.next([]wire.NodeInfo{busyN1}, []wire.InstanceStatus{changed, busyB}, t0.Add(14*time.Second))
	again, _ := r.next([]wire.NodeInfo{busyN1}, []wire.InstanceStatus{changed, busyB}, t0.Add(15*time.Second))
	if !slices.Equal(keysOf(lost.Instances), []string{"s.0"}) || !slices.Equal(keysOf(again.Instances), []string{"s.0"}) {
		t.Errorf("an unacknowledged change was not sent again: %v then %v", keysOf(lost.Instances), keysOf(again.Instances))
	}
	// The root restarted (resync): everything, without an epoch.
	r = reported{}
	full, _ := r.next([]wire.NodeInfo{busyN1}, []wire.InstanceStatus{changed, busyB}, t0.Add(16*time.Second))
	if full.Epoch != "" || len(full.Nodes) != 1 || len(full.Instances) != 2 {
		t.Errorf("after a resync: %+v, want everything", full)
	}
}

// TestDesiredApply: a full set replaces, a delta adds, changes and removes,
// and an unchanged network is kept.
func TestDesiredApply(t *testing.T) {
	spec := func(k string, code string) wire.InstanceSpec { return wire.InstanceSpec{Key: k, Code: code} }
	net1 := wire.Network{Services: []wire.ServiceRoute{{IP: "10.30.0.1"}}}
	var d desired
	specs, network, changed := d.apply(wire.ClusterDesired{Epoch: "E", Generation: 5, Instances: []wire.InstanceSpec{spec("a", "1"), spec("b", "1")}, Network: net1})
	if !changed || len(specs) != 2 || len(network.Services) != 1 {
		t.Fatalf("full set: %v %v %v", specs, network, changed)
	}
	specs, network, changed = d.apply(wire.ClusterDesired{Epoch: "E", Generation: 7, Delta: true,
		Instances: []wire.InstanceSpec{spec("c", "1"), spec("a", "2")}, Removed: []string{"b"}, NetworkUnchanged: true})
	if !changed || len(specs) != 2 || specs[0].Key != "a" || specs[0].Code != "2" || specs[1].Key != "c" || len(network.Services) != 1 {
		t.Errorf("after a delta: %v %v", specs, network)
	}
	if d.gen != 7 {
		t.Errorf("generation %d, want 7", d.gen)
	}
	if _, _, changed := d.apply(wire.ClusterDesired{Epoch: "E", Generation: 8, Delta: true, NetworkUnchanged: true}); changed {
		t.Errorf("an empty delta changed something")
	}
	// A delta of another epoch cannot apply to what we hold: it is a full set.
	specs, _, _ = d.apply(wire.ClusterDesired{Epoch: "F", Generation: 2, Delta: true, Instances: []wire.InstanceSpec{spec("z", "1")}, NetworkUnchanged: true})
	if len(specs) != 1 || specs[0].Key != "z" {
		t.Errorf("a delta of a new epoch kept the old set: %v", specs)
	}
}

// TestSyncsStayBounded: 2,000 instances that print all the time. No sync
// carries more than the budget; a log tail alone goes at most every
// logsEvery; a change of state goes before waiting tails; and every tail
// reaches the root within a few syncs.
func TestSyncsStayBounded(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	nodes := []wire.NodeInfo{{ID: "n1", Name: "n1", Active: true}}
	statuses := func(sec int) []wire.InstanceStatus {
		out := make([]wire.InstanceStatus, 2000)
		line := strings.Repeat("x", 4000)
		for i := range out {
			out[i] = wire.InstanceStatus{Key: fmt.Sprintf("s.%d", i), Status: wire.StatusRunning, NodeID: "n1",
				Logs: fmt.Sprintf("%d %s", sec, line)}
		}
		return out
	}
	weight := func(req wire.ClusterSync) int {
		n := 0
		for _, st := range req.Instances {
			n += size(st)
		}
		return n
	}
	var r reported
	sync := func(at time.Duration, sts []wire.InstanceStatus) (wire.ClusterSync, bool) {
		t.Helper()
		req, more := r.next(nodes, sts, t0.Add(at))
		if req.Epoch == "" {
			// The first sync has every status (the root replaces what it
			// held): only its log tails are bounded.
			logs := 0
			for _, st := range req.Instances {
				logs += len(st.Logs)
			}
			if logs > syncBudget {
				t.Fatalf("first sync carries %d bytes of log tails, budget %d", logs, syncBudget)
			}
		} else if w := weight(req); w > syncBudget+size(sts[0]) {
			t.Fatalf("sync at %s weighs %d bytes, budget %d", at, w, syncBudget)
		}
		epoch := "E1"
		r.acked(req, epoch, t0.Add(at))
		return req, more
	}

	first, more := sync(0, statuses(0))
	if len(first.Instances) != 2000 || !more {
		t.Fatalf("first sync: %d statuses (more %v), want all 2000 with the tails that fit", len(first.Instances), more)
	}
	// A second later every tail changed: none is due yet.
	if req, _ := sync(time.Second, statuses(1)); len(req.Instances) != 0 {
		t.Errorf("tails resent after 1 s: %d statuses", len(req.Instances))
	}
	// After logsEvery they are due, and go in budget-sized syncs; a change
	// of state goes first.
	sts := statuses(5)
	sts[1999].Status = wire.StatusFailed
	req, more := sync(logsEvery, sts)
	if len(req.Instances) == 0 || req.Instances[0].Key != "s.1999" || !more {
		t.Fatalf("first sync with due tails: %d statuses, first %q, more %v", len(req.Instances), req.Instances[0].Key, more)
	}
	got := map[string]bool{}
	for _, st := range req.Instances {
		got[st.Key] = true
	}
	for i := 1; more && i < 100; i++ {
		req, more = sync(logsEvery+time.Duration(i)*20*time.Millisecond, sts)
		for _, st := range req.Instances {
			got[st.Key] = true
		}
	}
	if more || len(got) != 2000 {
		t.Errorf("after the follow-up syncs %d of 2000 tails were sent (more %v)", len(got), more)
	}
}
