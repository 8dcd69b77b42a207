package manager

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestDeleteNodes: a node the root lists as deleted is forgotten at once
// (also by the store), its password stops working, the broker is told to
// drop it, its subnet is free, its instance is placed on the other node
// without any grace, its reports are ignored, and it cannot register again
// with its old credential; a fresh registration (no credential) under its
// name is a new node.
func TestDeleteNodes(t *testing.T) {
	ctx := context.Background()
	st := realStore(t, t.TempDir())
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m := newManager(t, st, pub)
	m.SetBlock(netip.MustParsePrefix("10.64.0.0/22"))
	var dropped []string
	m.OnNodeDeleted(func(id string) { dropped = append(dropped, id) })
	a := join(t, m, "a")
	b := join(t, m, "b")
	spec := wire.InstanceSpec{Key: "svc.0", ServiceID: "svc", Virtualization: "container", Code: "img",
		Resources: wire.Resources{MilliCPU: 500, MemoryMB: 128}}
	m.SetDesired([]wire.InstanceSpec{spec}, nil)
	reconcile(t, m)
	on := m.Statuses()[0].NodeID
	other := map[string]string{a: b, b: a}[on]
	name := map[string]string{a: "a", b: "b"}[on]
	subnet := m.nodes[on].Subnet
	if subnet == "" {
		t.Fatal("the node got no subnet")
	}
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: on, Full: true,
		Instances: []wire.InstanceStatus{{Key: "svc.0", Status: wire.StatusRunning}}, Node: wire.NodeInfo{Active: true}})

	n, err := m.DeleteNodes(ctx, []string{on, "unknown"})
	if err != nil || n != 1 {
		t.Fatalf("DeleteNodes: %d, %v; want 1 node deleted", n, err)
	}
	if len(dropped) != 1 || dropped[0] != on {
		t.Errorf("the broker was told to drop %v; want [%s]", dropped, on)
	}
	if m.CheckNodePassword(on, []byte("password-"+name)) {
		t.Error("the deleted node's password still works")
	}
	if st := m.Statuses()[0]; st.NodeID != "" || st.Status != wire.StatusLost || !strings.Contains(st.Detail, "deleted") {
		t.Errorf("after the delete the instance is %+v; want LOST, unplaced, saying its node was deleted", st)
	}
	// Its report, arriving late, changes nothing.
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: on, Full: true,
		Instances: []wire.InstanceStatus{{Key: "svc.0", Status: wire.StatusRunning}}, Node: wire.NodeInfo{Active: true}})
	reconcile(t, m) // no grace: placed on the other at once
	if st := m.Statuses()[0]; st.NodeID != other || st.Status != wire.StatusScheduled {
		t.Errorf("the instance is %+v; want scheduled on the other node %s", st, other)
	}
	if len(m.Nodes()) != 1 {
		t.Errorf("%d nodes; want 1", len(m.Nodes()))
	}
	saved, err := st.Nodes(ctx)
	if err != nil || len(saved) != 1 || saved[0].ID != other {
		t.Errorf("the store holds %+v, %v; want only the other node", saved, err)
	}
	// Listed again (every desired set lists it): nothing more happens.
	if n, err := m.DeleteNodes(ctx, []string{on}); n != 0 || err != nil {
		t.Errorf("deleting again: %d, %v", n, err)
	}

	req := wire.NodeRegisterRequest{Version: wire.Version, Name: name, Arch: "amd64", Virtualizations: []string{"container"},
		Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}, NodeID: on, Credential: "password-" + name, Subnet: subnet}
	_, err = m.RegisterNode(ctx, req, "new-password")
	var del *DeletedNodeError
	if !errors.As(err, &del) || del.NodeDeleted() != on || !strings.Contains(err.Error(), "deleted by an admin") {
		t.Fatalf("the deleted node registering with its credential: %v; want a DeletedNodeError", err)
	}
	if m.CheckNodePassword(on, []byte("new-password")) || len(m.Nodes()) != 1 {
		t.Fatal("a refused registration changed something")
	}
	// A fresh host under the same name, with no identity: a new node, and
	// the freed subnet may be its.
	req.NodeID, req.Credential = "", ""
	id, err := m.RegisterNode(ctx, req, "fresh")
	if err != nil || id == on {
		t.Fatalf("a new registration under the name: %q, %v; want a new id", id, err)
	}
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: wire.NodeInfo{Active: true}})
	reconcile(t, m)
	if got := m.nodes[id].Subnet; got != subnet {
		t.Errorf("the new node got subnet %q; want the freed %s back", got, subnet)
	}

	// A restarted manager loads only what the store kept.
	m2 := newManager(t, st, pub)
	if m2.nodes[on] != nil || m2.nodes[id] == nil {
		t.Error("after a restart the deleted node is back or the new one is missing")
	}
}

func reconcile(t *testing.T, m *Manager) {
	t.Helper()
	if err := m.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestDeletedNodeKeepsJobsForItsLease: the jobs the copies on a deleted
// node held are not granted to their replacements before that node's
// lease ran out (the deleted host, cut off, drops them by itself then);
// after it the replacements run them.
func TestDeletedNodeKeepsJobsForItsLease(t *testing.T) {
	p := newPool(t, state.NewMemory(), 12)
	p.nodes = append(p.nodes, join(t, p.m, "n3"))
	p.m.SetDesired([]wire.InstanceSpec{p.spec(0), p.spec(1), p.spec(2)}, nil)
	p.settle()
	doomed := p.nodes[0]
	var lostKeys []string
	for _, sp := range p.pub.desired[doomed].Instances {
		lostKeys = append(lostKeys, sp.Key)
	}
	if len(lostKeys) == 0 {
		t.Fatal("no instance on the first node")
	}
	if _, err := p.m.DeleteNodes(context.Background(), []string{doomed}); err != nil {
		t.Fatal(err)
	}
	p.silent[doomed] = true // its copies still run what they held
	p.step()                // check: none of their jobs runs elsewhere
	p.step()
	for _, st := range p.m.Statuses() {
		if !slices.Contains(lostKeys, st.Key) {
			continue
		}
		if st.NodeID == "" || st.NodeID == doomed {
			t.Fatalf("the deleted node's instance %s is not placed elsewhere: %+v", st.Key, st)
		}
		// The replacement is the same member: within the lease it is
		// granted nothing, or it would run what the old copy still runs.
		for _, sp := range p.pub.desired[st.NodeID].Instances {
			if sp.Key == st.Key && sp.JobGrant != nil && len(sp.JobGrant.Jobs) > 0 {
				t.Errorf("within the deleted node's lease the replacement of %s was granted %v", st.Key, sp.JobGrant.Jobs)
			}
		}
	}
	// The lease ran out: the host dropped them; the replacements get them.
	for _, k := range lostKeys {
		p.runs[k] = nil
	}
	p.m.mu.Lock()
	p.m.deletedAt[doomed] = time.Now().Add(-time.Minute)
	p.m.mu.Unlock()
	p.settle()
	n := 0
	for _, js := range p.runs {
		n += len(js)
	}
	if n != len(p.list) {
		t.Errorf("after the lease %d of %d jobs run: %v", n, len(p.list), p.runs)
	}
}
