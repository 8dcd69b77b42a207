package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/mongodb"
)

type recorder struct {
	desired   map[string]wire.NodeDesired
	published []string // node ids, in order
}

func (r *recorder) PublishDesired(_ context.Context, id string, d wire.NodeDesired) error {
	r.desired[id] = d
	r.published = append(r.published, id)
	return nil
}

// join registers a node and has it report once, as a node engine does once
// it reached the broker: only then does it count as active.
func join(t *testing.T, m *Manager, name string) string {
	t.Helper()
	info := wire.NodeInfo{Arch: "amd64", Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}
	id, err := m.RegisterNode(context.Background(), wire.NodeRegisterRequest{Name: name, Arch: info.Arch,
		Virtualizations: info.Virtualizations, Capacity: info.Capacity}, "password-"+name)
	if err != nil {
		t.Fatal(err)
	}
	info.Active = true
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: info})
	return id
}

// realStore returns the MongoDB store in dir (the embedded engine).
func realStore(t *testing.T, dir string) *state.Store {
	t.Helper()
	ctx := context.Background()
	conn, err := mongodb.Open(ctx, mongodb.Options{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	st, err := state.New(ctx, conn.Client.Database("cluster"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newManager returns a manager over st: a state.Memory, or a realStore
// where what MongoDB keeps is the point.
func newManager(t *testing.T, st Store, pub Publisher) *Manager {
	t.Helper()
	m, err := New(context.Background(), Config{ClusterName: "c1", Grace: time.Hour, Tick: time.Second}, st, pub, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestStateSurvivesRestart: a restarted cluster manager still knows its
// nodes' MQTT passwords and where every instance runs.
func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m := newManager(t, realStore(t, dir), pub)
	ctx := context.Background()
	id, err := m.RegisterNode(ctx, wire.NodeRegisterRequest{Name: "n1", Arch: "amd64", Virtualizations: []string{"container"},
		Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}, "secret-password")
	if err != nil {
		t.Fatal(err)
	}
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: wire.NodeInfo{Active: true, Arch: "amd64",
		Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}})
	spec := wire.InstanceSpec{Key: "svc.0", ServiceID: "svc", Virtualization: "container", Code: "img",
		Resources: wire.Resources{MilliCPU: 500, MemoryMB: 128},
		Ports:     []wire.PortMapping{{HostPort: 8080, InstancePort: 80, Protocol: wire.ProtocolTCP}}}
	m.SetDesired([]wire.InstanceSpec{spec}, nil)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if d := pub.desired[id]; len(d.Instances) != 1 || d.Instances[0].Key != "svc.0" {
		t.Fatalf("node's desired set = %+v", d)
	}

	m2 := newManager(t, realStore(t, dir), pub) // a restarted manager on the same store
	if !m2.CheckNodePassword(id, []byte("secret-password")) {
		t.Errorf("the node's password is not accepted after a restart")
	}
	if m2.CheckNodePassword(id, []byte("wrong-password")) {
		t.Errorf("a wrong password is accepted")
	}
	st := m2.Statuses()
	if len(st) != 1 || st[0].NodeID != id || st[0].Status != wire.StatusScheduled {
		t.Errorf("instances after restart = %+v", st)
	}
	if n := m2.Nodes(); len(n) != 1 || !slices.Equal(n[0].UsedPorts, []string{"8080/tcp"}) {
		t.Errorf("nodes after restart = %+v, want 8080/tcp in use (the spec's ports kept)", n)
	}
}

// failover is two nodes and one instance whose node went silent: only
// the other node reported, so the instance is scheduled there.
type failover struct {
	t             *testing.T
	m             *Manager
	pub           *recorder
	placed, other string // the instance's first node, and the other
}

// newFailover sets it up in st, for a service with disconnect policy pol
// (nil: the defaults); before the silence the first node reports the
// instance as st, if given.
func newFailover(t *testing.T, store Store, pol *wire.Disconnect, st ...wire.InstanceStatus) *failover {
	f := setupFailover(t, store, wire.InstanceSpec{Disconnect: pol}, st...)
	f.reconcile()
	if got := f.m.Statuses()[0]; got.NodeID != f.other || got.Status != wire.StatusScheduled {
		t.Fatalf("after its node went silent the instance is %+v, want scheduled on %s", got, f.other)
	}
	return f
}

// setupFailover is newFailover up to the silence: the first node has been
// silent for twice the grace, the other reported since.
func setupFailover(t *testing.T, store Store, spec wire.InstanceSpec, st ...wire.InstanceStatus) *failover {
	f := &failover{t: t, pub: &recorder{desired: map[string]wire.NodeDesired{}}}
	f.m = newManager(t, store, f.pub)
	f.m.cfg.Grace = 50 * time.Millisecond
	n1, n2 := join(t, f.m, "n1"), join(t, f.m, "n2")
	spec.Key, spec.ServiceID, spec.Virtualization, spec.Code = "svc.0", "svc", "container", "img"
	spec.Resources = wire.Resources{MilliCPU: 500, MemoryMB: 128}
	f.m.SetDesired([]wire.InstanceSpec{spec}, nil)
	f.reconcile()
	f.placed = f.m.Statuses()[0].NodeID
	f.other = map[string]string{n1: n2, n2: n1}[f.placed]
	f.report(f.placed, st...)
	// Only the other node keeps reporting.
	time.Sleep(100 * time.Millisecond)
	f.report(f.other)
	return f
}

func (f *failover) report(id string, st ...wire.InstanceStatus) {
	f.m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: wire.NodeInfo{Active: true, Arch: "amd64",
		Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}, Instances: st, Full: true})
}

// signOfLife is what a restarted node engine sends first: no instances.
func (f *failover) signOfLife(id string) {
	f.m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: wire.NodeInfo{Active: true, Arch: "amd64",
		Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}})
}

func (f *failover) reconcile() {
	f.t.Helper()
	if err := f.m.Reconcile(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

// TestFailoverAndStartupGrace: a silent node loses its instances to another
// node (here a service that keeps the replacement), but not while a
// restarted manager is still in its startup grace.
func TestFailoverAndStartupGrace(t *testing.T) {
	store := state.NewMemory()
	f := newFailover(t, store, &wire.Disconnect{Replace: true, Reconcile: wire.KeepReplacement})
	m, pub, placed, other := f.m, f.pub, f.placed, f.other
	ctx := context.Background()
	// The silent node is not told to stop it: it may only be slow, or cut
	// off; it hears what to do when it is back.
	if d := pub.desired[placed]; len(d.Instances) != 1 {
		t.Errorf("the silent node was sent a desired set with %d instances while it was lost", len(d.Instances))
	}
	// It comes back while the replacement runs: its copy goes.
	f.report(other, wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning})
	f.report(placed, wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning})
	f.reconcile()
	if st := m.Statuses()[0]; st.NodeID != other || st.Status != wire.StatusRunning {
		t.Errorf("after the lost node came back the instance is %+v, want running on %s", st, other)
	}
	if d := pub.desired[placed]; len(d.Instances) != 0 {
		t.Errorf("the returned node's desired set still holds %d instances (the replacement runs)", len(d.Instances))
	}

	// A restarted manager: nobody has reported yet, but within the startup
	// grace nothing moves.
	m2 := newManager(t, store, pub)
	m2.cfg.Grace = 50 * time.Millisecond
	time.Sleep(100 * time.Millisecond)
	if err := m2.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if st := m2.Statuses()[0]; st.NodeID != other {
		t.Errorf("a restarted manager moved the instance during its startup grace: %+v", st)
	}
}

// TestUndeployedBackendLeavesEveryNodesTable: when the root takes a running
// instance away, every node's service table loses it at once, not only the
// table of the node that ran it.
func TestUndeployedBackendLeavesEveryNodesTable(t *testing.T) {
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m := newManager(t, state.NewMemory(), pub)
	ctx := context.Background()
	register := func(name string) string { return join(t, m, name) }
	backends := func(node string) []wire.Backend {
		for _, r := range pub.desired[node].Network.Services {
			if r.ServiceID == "svc" {
				return r.Backends
			}
		}
		t.Fatalf("no route of svc in the desired set of %s: %+v", node, pub.desired[node].Network)
		return nil
	}
	reconcile := func() {
		if err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	m.SetNetwork("c1", []string{"10.64.0.0/16"}, wire.Network{Services: []wire.ServiceRoute{{IP: "10.30.0.9", Mode: wire.RouteRoundRobin, ServiceID: "svc",
		Tenant: "alice", AllowUsers: []string{"bob"}, AllowServices: []string{"cart"}}}})
	host := register("host")
	spec := wire.InstanceSpec{Key: "svc.0", ServiceID: "svc", Virtualization: "container", Code: "img",
		Resources: wire.Resources{MilliCPU: 500, MemoryMB: 128}}
	m.SetDesired([]wire.InstanceSpec{spec}, nil)
	reconcile()
	other := register("other")
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: host, Time: time.Now(), Generation: pub.desired[host].Generation,
		Instances: []wire.InstanceStatus{{Key: "svc.0", Status: wire.StatusRunning, InstanceIP: "10.64.0.2"}}})
	reconcile()
	if b := backends(other); len(b) != 1 || b[0].IP != "10.64.0.2" {
		t.Fatalf("other node's backends of svc while it runs = %+v", b)
	}
	// The route keeps the root's tenancy fields (thicket-net isolates by them).
	if r := pub.desired[other].Network.Services[0]; r.Tenant != "alice" || fmt.Sprint(r.AllowUsers, r.AllowServices) != "[bob] [cart]" {
		t.Errorf("node's route lost its tenancy: %+v", r)
	}

	m.SetDesired(nil, []string{"svc.0"})
	reconcile()
	for name, id := range map[string]string{"host": host, "other": other} {
		if b := backends(id); len(b) != 0 {
			t.Errorf("%s node's backends of svc after the undeploy = %+v", name, b)
		}
	}
}

// TestNodeActiveFromFirstReport: a registered node takes no instance until
// it reports (it may never reach the broker: a wrong advertised address);
// registering again keeps its place in the overlay.
func TestNodeActiveFromFirstReport(t *testing.T) {
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m := newManager(t, state.NewMemory(), pub)
	ctx := context.Background()
	req := wire.NodeRegisterRequest{Name: "n1", Arch: "amd64", Virtualizations: []string{"container"},
		Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}
	id, err := m.RegisterNode(ctx, req, "pw")
	if err != nil {
		t.Fatal(err)
	}
	m.SetBlock(netip.MustParsePrefix("10.64.1.0/24")) // the node's subnet: the one it reports
	m.SetDesired([]wire.InstanceSpec{{Key: "svc.0", ServiceID: "svc", Virtualization: "container", Code: "img",
		Resources: wire.Resources{MilliCPU: 500, MemoryMB: 128}}}, nil)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if st := m.Statuses()[0]; st.Status != wire.StatusNoCapacity || st.NodeID != "" {
		t.Errorf("before the node's first report its instance is %+v, want NO_CAPACITY", st)
	}
	if nodes := m.Nodes(); len(nodes) != 1 || nodes[0].Active {
		t.Errorf("a node that never reported is shown %+v, want inactive", nodes)
	}
	network := &wire.NodeNetwork{NodeID: id, Subnet: "10.64.1.0/24", VTEPMAC: "02:00:00:00:00:01", PublicIP: "192.0.2.1", PublicPort: 4789}
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: wire.NodeInfo{Active: true, Arch: "amd64",
		Virtualizations: []string{"container"}, Capacity: req.Capacity, Network: network}})
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if st := m.Statuses()[0]; st.NodeID != id {
		t.Errorf("after the node's first report its instance is %+v, want placed on it", st)
	}
	// A node engine restarts and registers again, with its credentials: it
	// stays active and in the overlay.
	again := req
	again.NodeID, again.Credential = id, "pw"
	if _, err := m.RegisterNode(ctx, again, "pw2"); err != nil {
		t.Fatal(err)
	}
	if nodes := m.Nodes(); !nodes[0].Active || nodes[0].Network == nil || nodes[0].Network.Subnet != network.Subnet {
		t.Errorf("after registering again the node is %+v, want active with its network", nodes[0])
	}
}

// TestReturningNodeKeepsWhatRuns: a node declared lost that comes back
// still running its instance keeps it when the replacement does not run
// yet (a busy node is not restarted), and the replacement is called off,
// even for a service that otherwise keeps replacements.
func TestReturningNodeKeepsWhatRuns(t *testing.T) {
	f := newFailover(t, state.NewMemory(), &wire.Disconnect{Replace: true, Reconcile: wire.KeepReplacement},
		wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning})
	m, pub, placed, other := f.m, f.pub, f.placed, f.other
	report, ctx := f.report, context.Background()
	// The busy node is back and still runs it; the replacement has not
	// started: the running copy stays, the replacement is called off.
	report(placed, wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning})
	report(other)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if st := m.Statuses()[0]; st.NodeID != placed || st.Status != wire.StatusRunning {
		t.Errorf("after the busy node came back the instance is %+v, want running on %s", st, placed)
	}
	if d := pub.desired[placed]; len(d.Instances) != 1 {
		t.Errorf("the returned node's desired set holds %d instances, want its running one", len(d.Instances))
	}
	if d := pub.desired[other]; len(d.Instances) != 0 {
		t.Errorf("the replacement's node still holds %d instances", len(d.Instances))
	}
}

// TestDisconnectPolicies: a lost node's instances are UNKNOWN; whether a
// replacement is placed follows the service's disconnect policy, and when
// the node comes back exactly one copy survives, chosen by the policy.
func TestDisconnectPolicies(t *testing.T) {
	running := wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning}
	cases := []struct {
		name     string
		spec     wire.InstanceSpec
		replaced bool   // a replacement is placed on the other node
		runs     bool   // and it runs when the lost node is back
		back     string // what the lost node reports of its copy ("" nothing)
		onPlaced bool   // the instance ends on the node that was lost
	}{
		{name: "default: replaced, original kept", replaced: true, runs: true, back: wire.StatusRunning, onPlaced: true},
		{name: "keep_replacement", spec: wire.InstanceSpec{Disconnect: &wire.Disconnect{Replace: true, Reconcile: wire.KeepReplacement}},
			replaced: true, runs: true, back: wire.StatusRunning},
		{name: "the lost node lost its copy", replaced: true, runs: true},
		{name: "replace false", spec: wire.InstanceSpec{Disconnect: &wire.Disconnect{Reconcile: wire.KeepOriginal}},
			back: wire.StatusRunning, onPlaced: true},
		{name: "replace_after not reached", spec: wire.InstanceSpec{Disconnect: &wire.Disconnect{Replace: true, ReplaceAfter: 3600, Reconcile: wire.KeepOriginal}},
			back: wire.StatusRunning, onPlaced: true},
		{name: "one-shot: never replaced, runs once", spec: wire.InstanceSpec{OneShot: true}, back: wire.StatusCompleted, onPlaced: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := setupFailover(t, state.NewMemory(), tc.spec, running)
			f.reconcile()
			got := f.m.Statuses()[0]
			if tc.replaced {
				if got.NodeID != f.other || got.Status != wire.StatusScheduled {
					t.Fatalf("after its node went silent the instance is %+v, want scheduled on the other node", got)
				}
			} else if got.NodeID != f.placed || got.Status != wire.StatusUnknown {
				t.Fatalf("after its node went silent the instance is %+v, want UNKNOWN on its node", got)
			}
			if d := f.pub.desired[f.other]; len(d.Instances) != map[bool]int{true: 1}[tc.replaced] {
				t.Fatalf("the other node's desired set holds %d instances, replaced=%v", len(d.Instances), tc.replaced)
			}
			if tc.runs {
				f.report(f.other, running)
			}
			// A restarted node engine's first sign of life holds no
			// instances: nothing is decided on it, and the node's desired
			// set keeps its copy meanwhile.
			f.signOfLife(f.placed)
			f.reconcile()
			if tc.back != "" {
				if d := f.pub.desired[f.placed]; len(d.Instances) != 1 {
					t.Fatalf("the node back from lost was sent a desired set of %d instances before it reported its copy", len(d.Instances))
				}
			}
			var back []wire.InstanceStatus
			if tc.back != "" {
				back = append(back, wire.InstanceStatus{Key: "svc.0", Status: tc.back})
			}
			f.report(f.placed, back...)
			f.reconcile()
			want, gone := f.placed, f.other
			if !tc.onPlaced {
				want, gone = f.other, f.placed
			}
			if st := f.m.Statuses()[0]; st.NodeID != want {
				t.Errorf("the instance ends as %+v, want it on node %s", st, want)
			}
			if d := f.pub.desired[want]; len(d.Instances) != 1 {
				t.Errorf("the keeping node's desired set holds %d instances", len(d.Instances))
			}
			if d := f.pub.desired[gone]; len(d.Instances) != 0 {
				t.Errorf("the other copy's node still holds %d instances: two copies", len(d.Instances))
			}
			if in := f.m.instances["svc.0"]; in.LostFrom != "" {
				t.Errorf("decision still pending after the node reported: %+v", in)
			}
		})
	}
}

// TestSubnetsSpanBlocks: with /24 node subnets a /22 block holds four
// nodes; the fifth waits and the manager asks for one more block, and gets
// its subnet from the second block once the root gave it.
func TestSubnetsSpanBlocks(t *testing.T) {
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m := newManager(t, state.NewMemory(), pub)
	ctx := context.Background()
	m.SetNetwork("c1", []string{"10.64.0.0/22"}, wire.Network{})
	var ids []string
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
		ids = append(ids, join(t, m, name))
	}
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	subnets := func() map[string]string {
		out := map[string]string{}
		for _, id := range ids {
			out[id] = pub.desired[id].Subnet
		}
		return out
	}
	got := subnets()
	assigned := 0
	for _, s := range got {
		if s != "" {
			assigned++
		}
	}
	if assigned != 4 || m.WantBlocks() != 1 {
		t.Fatalf("one /22 for six nodes: %d subnets assigned (%v), wants %d more blocks; want 4 and 1", assigned, got, m.WantBlocks())
	}
	m.SetNetwork("c1", []string{"10.64.0.0/22", "10.64.4.0/22"}, wire.Network{})
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for id, s := range subnets() {
		if s == "" || seen[s] {
			t.Errorf("node %s has subnet %q after the second block (duplicate or none)", id, s)
		}
		seen[s] = true
		if got[id] != "" && got[id] != s {
			t.Errorf("node %s moved from %s to %s", id, got[id], s)
		}
	}
	if !seen["10.64.4.0/24"] || m.WantBlocks() != 0 {
		t.Errorf("subnets %v, still wants %d blocks; want the second block used and none wanted", seen, m.WantBlocks())
	}
	// Every node has its subnet: the next passes keep them and want none.
	before := subnets()
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if after := subnets(); !maps.Equal(before, after) || m.WantBlocks() != 0 {
		t.Errorf("a pass with every node's subnet assigned: subnets %v (before %v), wants %d blocks", after, before, m.WantBlocks())
	}
}

// TestStatusChangesRepublishOnlyWhatChanged: a status that moves no
// backend sends no node a new desired set (at 1,000 nodes, each instance
// that started used to republish every node's set); a backend that joins
// a service's table reaches every node.
func TestStatusChangesRepublishOnlyWhatChanged(t *testing.T) {
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m := newManager(t, state.NewMemory(), pub)
	ctx := context.Background()
	ids := []string{join(t, m, "n1"), join(t, m, "n2"), join(t, m, "n3")}
	m.SetNetwork("cluster-1", []string{"10.30.0.0/16"}, wire.Network{Services: []wire.ServiceRoute{{IP: "10.30.255.1", ServiceID: "svc"}}})
	m.SetDesired([]wire.InstanceSpec{{Key: "svc.0", ServiceID: "svc", Virtualization: "container", Code: "img",
		Resources: wire.Resources{MilliCPU: 500, MemoryMB: 128}}}, nil)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	on := m.Statuses()[0].NodeID
	if on == "" {
		t.Fatal("instance not placed")
	}
	// An instance IP in the subnet of the node it runs on.
	ip := netip.MustParsePrefix(pub.desired[on].Subnet).Addr().Next().Next().Next().Next().Next().String()
	report := func(st wire.InstanceStatus) {
		t.Helper()
		pub.published = nil
		m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: on, Node: wire.NodeInfo{Active: true, Arch: "amd64",
			Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}},
			Instances: []wire.InstanceStatus{st}})
		if err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}

	report(wire.InstanceStatus{Key: "svc.0", Status: wire.StatusCreating})
	report(wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning})
	if len(pub.published) != 0 {
		t.Errorf("RUNNING without an address republished %v", pub.published)
	}
	report(wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning, InstanceIP: ip})
	if len(pub.published) != len(ids) {
		t.Fatalf("a new backend reached %v, want all of %v", pub.published, ids)
	}
	for _, id := range ids {
		d := pub.desired[id]
		if len(d.Network.Services) != 1 || len(d.Network.Services[0].Backends) != 1 || d.Network.Services[0].Backends[0].IP != ip {
			t.Errorf("node %s's service table = %+v", id, d.Network.Services)
		}
	}
	report(wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning, InstanceIP: ip, Restarts: 0, Detail: "still"})
	if len(pub.published) != 0 {
		t.Errorf("a status detail republished %v", pub.published)
	}
	report(wire.InstanceStatus{Key: "svc.0", Status: wire.StatusFailed, InstanceIP: ip})
	if len(pub.published) != len(ids) {
		t.Errorf("a backend that left reached %v, want all of %v", pub.published, ids)
	}
}

// TestStatusesWrittenByStop: a placement is written at once; statuses are
// written together later, and a manager that stops writes what waited.
func TestStatusesWrittenByStop(t *testing.T) {
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m := newManager(t, state.NewMemory(), pub)
	ctx := context.Background()
	id := join(t, m, "n1")
	m.SetDesired([]wire.InstanceSpec{{Key: "svc.0", ServiceID: "svc", Virtualization: "container", Code: "img",
		Resources: wire.Resources{MilliCPU: 500, MemoryMB: 128}}}, nil)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	stored := func() state.Instance {
		t.Helper()
		ins, err := m.st.Instances(ctx)
		if err != nil || len(ins) != 1 {
			t.Fatalf("stored instances %+v, %v", ins, err)
		}
		return ins[0]
	}
	if in := stored(); in.NodeID != id {
		t.Fatalf("placement not written at once: %+v", in)
	}

	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: wire.NodeInfo{Active: true, Arch: "amd64",
		Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}},
		Instances: []wire.InstanceStatus{{Key: "svc.0", Status: wire.StatusRunning}}})
	stop, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { m.Run(stop); close(done) }()
	cancel()
	<-done
	if in := stored(); in.Status.Status != wire.StatusRunning || in.NodeID != id {
		t.Fatalf("after the manager stopped the store holds %+v, want RUNNING on %s", in, id)
	}
}

// TestOneShotEndWrittenAtOnce: a one-shot instance that completed is
// written at the next pass, not with the statuses that may wait: a manager
// killed right after must not run it again.
func TestOneShotEndWrittenAtOnce(t *testing.T) {
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	st := state.NewMemory()
	m := newManager(t, st, pub)
	ctx := context.Background()
	id := join(t, m, "n1")
	m.SetDesired([]wire.InstanceSpec{{Key: "job.0", ServiceID: "job", Virtualization: "container", Code: "img", OneShot: true,
		Resources: wire.Resources{MilliCPU: 500, MemoryMB: 128}}}, nil)
	report := func(status string) {
		m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: wire.NodeInfo{Active: true, Arch: "amd64",
			Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}},
			Instances: []wire.InstanceStatus{{Key: "job.0", Status: status}}})
		if err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	report(wire.StatusRunning)
	report(wire.StatusCompleted)
	ins, _ := st.Instances(ctx)
	if len(ins) != 1 || ins[0].Status.Status != wire.StatusCompleted {
		t.Fatalf("stored right after the end: %+v", ins)
	}
}

// TestRootCannotWipeCluster: a full desired set from the root that drops
// most of the cluster's instances without listing them as removed (a root
// that lost its store) holds them running; explicit removals apply, and
// reach the node as explicit removals until it applied them.
func TestRootCannotWipeCluster(t *testing.T) {
	ctx := context.Background()
	for _, accept := range []bool{false, true} {
		pub := &recorder{desired: map[string]wire.NodeDesired{}}
		m := newManager(t, state.NewMemory(), pub)
		m.cfg.AcceptShrinkingSets = accept
		n1 := join(t, m, "n1")
		specs := make([]wire.InstanceSpec, 3)
		for i := range specs {
			specs[i] = wire.InstanceSpec{Key: fmt.Sprintf("svc.%d", i), ServiceID: "svc", Virtualization: "container", Code: "img",
				Resources: wire.Resources{MilliCPU: 100, MemoryMB: 16}}
		}
		m.SetDesired(specs, nil)
		if err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		m.SetDesired(nil, nil) // a root that knows nothing
		if err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		got := len(pub.desired[n1].Instances)
		if !accept && (got != 3 || len(m.Statuses()) != 3) {
			t.Fatalf("an empty set from the root wiped the cluster: node holds %d, cluster %d", got, len(m.Statuses()))
		}
		if accept {
			if got != 0 {
				t.Errorf("with --accept-shrinking-sets the empty set was not applied: node holds %d", got)
			}
			continue
		}
		// One of three dropped is not most: it is applied. The rest are
		// removed explicitly.
		m.SetDesired(specs[:2], nil)
		m.SetDesired(specs[:2], []string{"svc.2"})
		if err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if d := pub.desired[n1]; len(d.Instances) != 2 || !slices.Equal(d.Removed, []string{"svc.2"}) {
			t.Errorf("after an explicit removal the node's set is %v, removed %v", keysOf(d.Instances), d.Removed)
		}
		m.SetDesired(nil, []string{"svc.0", "svc.1"})
		if err := m.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		d := pub.desired[n1]
		if len(d.Instances) != 0 || !slices.Equal(d.Removed, []string{"svc.0", "svc.1", "svc.2"}) {
			t.Errorf("after removing all explicitly the node's set is %v, removed %v", keysOf(d.Instances), d.Removed)
		}
		// The node applied that generation: nothing more to list.
		m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: n1, Generation: d.Generation, Full: true,
			Node: wire.NodeInfo{Active: true, Arch: "amd64", Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}})
		m.mu.Lock()
		left := len(m.removedFrom[n1])
		m.mu.Unlock()
		if left != 0 {
			t.Errorf("%d removals still listed after the node applied them", left)
		}
	}
}

func keysOf(specs []wire.InstanceSpec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.Key)
	}
	return out
}

// TestLostStoreRelearns: a manager that starts without state (its data dir
// was lost) and gets instances from the root places none of them during
// its startup grace: the nodes register again and report what they run,
// which places each where it runs; what nobody reports is placed after.
func TestLostStoreRelearns(t *testing.T) {
	ctx := context.Background()
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m, err := New(ctx, Config{ClusterName: "c1", Grace: time.Hour, Tick: time.Second, StartupGrace: 300 * time.Millisecond, Fresh: true},
		state.NewMemory(), pub, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	spec := func(k string) wire.InstanceSpec {
		return wire.InstanceSpec{Key: k, ServiceID: "svc", Virtualization: "container", Code: "img", Resources: wire.Resources{MilliCPU: 100, MemoryMB: 16}}
	}
	m.SetDesired([]wire.InstanceSpec{spec("svc.0"), spec("svc.1")}, nil)
	join(t, m, "n1")
	n2 := join(t, m, "n2")
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for _, st := range m.Statuses() {
		if st.NodeID != "" {
			t.Fatalf("placed during the startup grace of a manager without state: %+v", st)
		}
	}
	// n2 still runs svc.0 (it reports it, held or from its last set).
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: n2, Full: true, Instances: []wire.InstanceStatus{{Key: "svc.0", Status: wire.StatusRunning}},
		Node: wire.NodeInfo{Active: true, Arch: "amd64", Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}})
	time.Sleep(400 * time.Millisecond)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	sts := m.Statuses()
	if sts[0].NodeID != n2 || sts[0].Status != wire.StatusRunning {
		t.Errorf("svc.0 = %+v, want adopted where it runs (%s)", sts[0], n2)
	}
	if sts[1].NodeID == "" {
		t.Errorf("svc.1, which nobody reported, is not placed after the grace: %+v", sts[1])
	}
}

// TestRestartedOriginalIsNoOriginal: a host that lost its workloads and
// started its copy again after it was declared lost does not win over a
// replacement that runs, even for a service that keeps the original.
func TestRestartedOriginalIsNoOriginal(t *testing.T) {
	f := setupFailover(t, state.NewMemory(), wire.InstanceSpec{}, wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning})
	f.reconcile() // lost, replaced on the other node
	f.report(f.other, wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning})
	f.report(f.placed, wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning, StartedAt: time.Now()})
	f.reconcile()
	if st := f.m.Statuses()[0]; st.NodeID != f.other {
		t.Errorf("a copy started again after the loss won over the running replacement: %+v", st)
	}
	if d := f.pub.desired[f.placed]; len(d.Instances) != 0 || !slices.Equal(d.Removed, []string{"svc.0"}) {
		t.Errorf("the returned node keeps %d instances (removed %v)", len(d.Instances), d.Removed)
	}
}

// TestLyingNodeIgnored: a node reporting an instance placed on another
// node changes nothing, and is counted.
func TestLyingNodeIgnored(t *testing.T) {
	f := setupFailover(t, state.NewMemory(), wire.InstanceSpec{}, wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning})
	f.report(f.placed, wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning}) // back: nothing is lost
	before := testutil.ToFloat64(mIgnored)
	f.report(f.other, wire.InstanceStatus{Key: "svc.0", Status: wire.StatusFailed, Detail: "forged"})
	if st := f.m.Statuses()[0]; st.NodeID != f.placed || st.Detail == "forged" {
		t.Errorf("another node's report was applied: %+v", st)
	}
	if d := testutil.ToFloat64(mIgnored) - before; d != 1 {
		t.Errorf("ignored statuses counted %v, want 1", d)
	}
}

// BenchmarkHandleReport: one node's full report in a cluster of 2,000
// nodes and 1,000 instances, the load of the scale benchmark (2,000 of
// these a second). It must not grow with the cluster's instances.
func BenchmarkHandleReport(b *testing.B) {
	m, err := New(context.Background(), Config{ClusterName: "c1", Grace: time.Hour, Tick: time.Second}, state.NewMemory(),
		&recorder{desired: map[string]wire.NodeDesired{}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	info := wire.NodeInfo{Active: true, Arch: "amd64", Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 8000, MemoryMB: 16384}}
	ids := make([]string, 2000)
	for i := range ids {
		id, err := m.RegisterNode(context.Background(), wire.NodeRegisterRequest{Name: fmt.Sprintf("n%d", i), Arch: info.Arch,
			Virtualizations: info.Virtualizations, Capacity: info.Capacity}, "pw")
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = id
		m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: info})
	}
	specs := make([]wire.InstanceSpec, 1000)
	for i := range specs {
		specs[i] = wire.InstanceSpec{Key: fmt.Sprintf("svc.%d", i), ServiceID: "svc", Virtualization: "container", Code: "img",
			Resources: wire.Resources{MilliCPU: 100, MemoryMB: 16}}
	}
	m.SetDesired(specs, nil)
	if err := m.Reconcile(context.Background()); err != nil {
		b.Fatal(err)
	}
	reports := make([]wire.NodeReport, len(ids))
	for i, id := range ids {
		reports[i] = wire.NodeReport{Version: wire.Version, NodeID: id, Node: info, Full: true, Generation: 1}
	}
	for _, st := range m.Statuses() {
		for i, id := range ids {
			if id == st.NodeID {
				reports[i].Instances = append(reports[i].Instances, wire.InstanceStatus{Key: st.Key, Status: wire.StatusRunning})
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.HandleReport(reports[i%len(reports)])
	}
}

// TestSubnetGivenBack: a node this manager does not know (its store was
// lost) gets back the subnet it asks for when it is free, of the right
// size and in the cluster's blocks, so that its instances keep their
// addresses; otherwise it gets a new one as any node.
func TestSubnetGivenBack(t *testing.T) {
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m := newManager(t, state.NewMemory(), pub)
	ctx := context.Background()
	m.SetNetwork("c1", []string{"10.64.0.0/16"}, wire.Network{})
	register := func(name, subnet string) string {
		id, err := m.RegisterNode(ctx, wire.NodeRegisterRequest{Name: name, Arch: "amd64", Virtualizations: []string{"container"},
			Capacity: wire.Resources{MilliCPU: 1000, MemoryMB: 1024}, Subnet: subnet}, "pw")
		if err != nil {
			t.Fatal(err)
		}
		m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: wire.NodeInfo{Active: true, Arch: "amd64"}})
		return id
	}
	ids := map[string]string{
		"plain":     register("plain", ""),
		"had5":      register("had5", "10.64.5.0/24"),
		"taken":     register("taken", "10.64.5.0/24"),
		"notours":   register("notours", "192.168.0.0/24"),
		"wrongsize": register("wrongsize", "10.64.7.0/25"),
	}
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for name, id := range ids {
		got[name] = pub.desired[id].Subnet
	}
	if got["had5"] != "10.64.5.0/24" {
		t.Errorf("the node that had 10.64.5.0/24 got %q", got["had5"])
	}
	for _, name := range []string{"plain", "taken", "notours", "wrongsize"} {
		p, err := netip.ParsePrefix(got[name])
		if err != nil || p.Bits() != 24 || !netip.MustParsePrefix("10.64.0.0/16").Contains(p.Addr()) || got[name] == "10.64.5.0/24" {
			t.Errorf("node %s got %q: want a free /24 of the block", name, got[name])
		}
	}
	seen := map[string]bool{}
	for name, sub := range got {
		if seen[sub] {
			t.Errorf("subnet %s given twice (%s)", sub, name)
		}
		seen[sub] = true
	}
}

// TestPublishedPorts: instances that publish the same host port go to
// different nodes, whose reservations list the port, and a running one's
// status names its first host port; a spec from a root that predates
// parsed ports (the port field only) is served alike.
func TestPublishedPorts(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%t", legacy), func(t *testing.T) {
			m := newManager(t, state.NewMemory(), &recorder{desired: map[string]wire.NodeDesired{}})
			ctx := context.Background()
			ids := []string{join(t, m, "n1"), join(t, m, "n2")}
			specs := make([]wire.InstanceSpec, 2)
			for i := range specs {
				specs[i] = wire.InstanceSpec{Key: wire.InstanceKey("web", i), ServiceID: "web", InstanceNumber: i,
					Virtualization: "container", Code: "img", Resources: wire.Resources{MilliCPU: 100, MemoryMB: 64},
					Port: "8080:80;9090:90/udp"}
				if !legacy {
					specs[i].Ports = []wire.PortMapping{{HostPort: 8080, InstancePort: 80, Protocol: wire.ProtocolTCP},
						{HostPort: 9090, InstancePort: 90, Protocol: wire.ProtocolUDP}}
				}
			}
			m.SetDesired(specs, nil)
			if err := m.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			on := map[string]string{} // node id -> instance
			for _, st := range m.Statuses() {
				on[st.NodeID] = st.Key
			}
			if on[ids[0]] == "" || on[ids[1]] == "" {
				t.Fatalf("placement %v: want one instance on each node", on)
			}
			for _, n := range m.Nodes() {
				if want := []string{"8080/tcp", "9090/udp"}; !slices.Equal(n.UsedPorts, want) {
					t.Errorf("node %s uses ports %q, want %q", n.Name, n.UsedPorts, want)
				}
			}
			m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: ids[0], Node: wire.NodeInfo{Active: true, Arch: "amd64",
				Virtualizations: []string{"container"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}},
				Instances: []wire.InstanceStatus{{Key: on[ids[0]], Status: wire.StatusRunning}}})
			for _, st := range m.Statuses() {
				if want := map[bool]int{true: 8080}[st.Key == on[ids[0]]]; st.HostPort != want {
					t.Errorf("%s (%s): host port %d, want %d", st.Key, st.Status, st.HostPort, want)
				}
			}
		})
	}
}

// TestNodeTakeoverIsRefused: a registered node name is given again only to
// the node that shows its credentials (id and current MQTT password);
// another host of the same name is refused and changes nothing.
func TestNodeTakeoverIsRefused(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, state.NewMemory(), &recorder{desired: map[string]wire.NodeDesired{}})
	req := wire.NodeRegisterRequest{Version: wire.Version, Name: "edge", Arch: "amd64", Virtualizations: []string{"container"},
		Capacity: wire.Resources{MilliCPU: 1000, MemoryMB: 512}}
	id, err := m.RegisterNode(ctx, req, "pw1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		nodeID, secret string
	}{
		{"no credentials", "", ""},
		{"its id, no password", id, ""},
		{"its id, a wrong password", id, "guess"},
		{"another id, its password", "other", "pw1"},
	} {
		r := req
		r.NodeID, r.Credential = tc.nodeID, tc.secret
		_, err := m.RegisterNode(ctx, r, "stolen")
		var taken *NameTakenError
		if !errors.As(err, &taken) || taken.NameTaken() != "edge" || !strings.Contains(err.Error(), "--name") {
			t.Errorf("%s: got %v, want a NameTakenError telling to use --name", tc.name, err)
		}
		if m.CheckNodePassword(id, []byte("stolen")) || !m.CheckNodePassword(id, []byte("pw1")) {
			t.Fatalf("%s: a refused registration changed the node's password", tc.name)
		}
	}
	// The node itself: same id, the new password replaces the old.
	r := req
	r.NodeID, r.Credential = id, "pw1"
	got, err := m.RegisterNode(ctx, r, "pw2")
	if err != nil || got != id {
		t.Fatalf("the node registering again: %q, %v", got, err)
	}
	if m.CheckNodePassword(id, []byte("pw1")) || !m.CheckNodePassword(id, []byte("pw2")) {
		t.Error("after registering again the old password still works or the new one does not")
	}
	// The answer was lost: the node still holds pw1 and registers with it;
	// a password from before that is refused.
	if got, err := m.RegisterNode(ctx, r, "pw3"); err != nil || got != id {
		t.Fatalf("registering with the password the lost answer replaced: %q, %v", got, err)
	}
	if _, err := m.RegisterNode(ctx, r, "pw4"); err == nil {
		t.Error("a password two registrations old was accepted")
	}
	if n := len(m.Nodes()); n != 1 {
		t.Errorf("%d nodes, want 1", n)
	}
}

// TestLostNodeWithoutRoomElsewhere: the instances of a cluster's only node,
// lost, find no room for a replacement. They stay UNKNOWN on that node and
// this cluster's (NO_CAPACITY would hand them back to the root, which takes
// them from the cluster, and the returning node would be told to remove
// them); when the node returns, first with a sign of life, its desired set
// keeps them and removes nothing (issue 23, bug 2).
func TestLostNodeWithoutRoomElsewhere(t *testing.T) {
	pub := &recorder{desired: map[string]wire.NodeDesired{}}
	m := newManager(t, state.NewMemory(), pub)
	m.cfg.Grace = 50 * time.Millisecond
	id := join(t, m, "n1")
	f := &failover{t: t, m: m, pub: pub}
	var specs []wire.InstanceSpec
	for _, k := range []string{"svc.0", "svc.1"} {
		specs = append(specs, wire.InstanceSpec{Key: k, ServiceID: "svc", Virtualization: "container", Code: "img",
			Resources: wire.Resources{MilliCPU: 500, MemoryMB: 128}, Disconnect: &wire.Disconnect{Replace: true}})
	}
	m.SetDesired(specs, nil)
	f.reconcile()
	f.report(id, wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning}, wire.InstanceStatus{Key: "svc.1", Status: wire.StatusRunning})
	f.reconcile()
	time.Sleep(100 * time.Millisecond)
	f.reconcile() // lost; replacements find no node
	f.reconcile()
	for _, st := range m.Statuses() {
		if st.Status != wire.StatusUnknown || st.NodeID != id {
			t.Errorf("a lost node's instance without room elsewhere is %+v, want UNKNOWN on its node", st)
		}
	}
	f.signOfLife(id)
	f.reconcile()
	f.report(id, wire.InstanceStatus{Key: "svc.0", Status: wire.StatusRunning}, wire.InstanceStatus{Key: "svc.1", Status: wire.StatusRunning})
	f.reconcile()
	if d := pub.desired[id]; len(d.Instances) != 2 || len(d.Removed) != 0 {
		t.Errorf("the returned node's desired set: %v, removed %v; want both instances, nothing removed", keysOf(d.Instances), d.Removed)
	}
	for _, st := range m.Statuses() {
		if st.Status != wire.StatusRunning || st.NodeID != id {
			t.Errorf("after the node returned: %+v, want RUNNING on it", st)
		}
	}
	// What happened went into the events, told by the cluster.
	var evs []string
	for _, ev := range m.TakeEvents() {
		if ev.Key == "svc.0" && ev.Source == "cluster" {
			evs = append(evs, ev.Message)
		}
	}
	for _, want := range []string{"placed on node n1 (asks 128 MB", "node n1 lost", "seeking a replacement", "placed on node n1"} {
		if !slices.ContainsFunc(evs, func(m string) bool { return strings.HasPrefix(m, want) }) {
			t.Errorf("events of svc.0 %q lack %q", evs, want)
		}
	}
	if len(m.TakeEvents()) != 0 {
		t.Errorf("events handed over twice")
	}
	// A node's events are taken only of instances it has to do with.
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Events: []wire.Event{
		{Key: "svc.1", Time: time.Now(), Source: "node", Message: "exited with code 3; restarting in 1s"},
		{Key: "elsewhere.0", Time: time.Now(), Source: "node", Message: "not its instance"}}})
	if evs := m.TakeEvents(); len(evs) != 1 || evs[0].Key != "svc.1" || evs[0].Source != "node n1" {
		t.Errorf("events taken from a report: %+v, want svc.1's told by node n1", evs)
	}
}
