package state

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

func node(id string, memMB int64, cpu float64) wire.NodeInfo {
	return wire.NodeInfo{ID: id, Name: id, Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
		Capacity: wire.Resources{MilliCPU: 4000, MemoryMB: memMB}, CPUPercent: cpu,
		Network: &wire.NodeNetwork{NodeID: id, Subnet: "10.64.1.0/24", VTEPMAC: "aa:bb", PublicIP: "192.0.2.1", PublicPort: 4789}}
}

// cluster registers a cluster with one node and returns its id.
func cluster(t *testing.T, s *Store, name string, nodes ...wire.NodeInfo) string {
	t.Helper()
	id, _, block, _, err := s.RegisterCluster(Registration{Name: name})
	if err != nil || block == "" {
		t.Fatalf("register %s: %v (block %q)", name, err, block)
	}
	if _, _, err := s.ApplyReport(id, Report{Full: true, Nodes: nodes}); err != nil {
		t.Fatal(err)
	}
	return id
}

// instance adds an instance of a new service and assigns it to a cluster.
func instance(t *testing.T, s *Store, app, clusterID string) *Instance {
	t.Helper()
	apps, _, err := s.CreateApplications("u", oneApp(app, microservice("m", "")))
	if err != nil {
		t.Fatal(err)
	}
	in, _, err := s.AddInstance(apps[0].Services[0])
	if err != nil {
		t.Fatal(err)
	}
	if clusterID != "" {
		if n, err := s.Assign([]Assignment{{Key: in.Key, ClusterID: clusterID, NodeID: "n1"}}); err != nil || n != 1 {
			t.Fatalf("assign: %d, %v", n, err)
		}
	}
	return s.Snapshot().Instance(in.Key)
}

func keys(specs []wire.InstanceSpec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.Key)
	}
	return out
}

// TestDesiredDeltas: a cluster asking with the generation it holds gets only
// what changed after it: new specs, removed keys, the network if it changed;
// another epoch, a generation from the future or one older than the kept
// removals gets everything.
func TestDesiredDeltas(t *testing.T) {
	s := open(t, NewMemory())
	c1 := cluster(t, s, "c1", node("n1", 4096, 0))
	c2 := cluster(t, s, "c2", node("n2", 4096, 0))
	a := instance(t, s, "a", c1)
	epoch := s.Epoch()

	full := s.Snapshot().DesiredFor(c1, "", 0, epoch)
	if !full.Full || !slices.Equal(keys(full.Instances), []string{a.Key}) || !full.NetworkChanged {
		t.Fatalf("first desired set = %+v", full)
	}
	gen := s.Snapshot().Index()
	if d := s.Snapshot().DesiredFor(c1, epoch, gen, epoch); !d.Empty() {
		t.Errorf("nothing changed, delta = %+v", d)
	}

	b := instance(t, s, "b", c1) // a new service (and service IP): network changes too
	other := instance(t, s, "c", c2)
	d := s.Snapshot().DesiredFor(c1, epoch, gen, epoch)
	if d.Full || !slices.Equal(keys(d.Instances), []string{b.Key}) || len(d.Removed) != 0 || !d.NetworkChanged {
		t.Errorf("after a placement on c1 (and one on c2): delta = %+v, want only %s", d, b.Key)
	}
	gen = s.Snapshot().Index()

	// A status report changes no desired set.
	if _, _, err := s.ApplyReport(c1, Report{Statuses: []wire.InstanceStatus{{Key: a.Key, Status: wire.StatusCreating, NodeID: "n1", Node: "n1"}}}); err != nil {
		t.Fatal(err)
	}
	if d := s.Snapshot().DesiredFor(c1, epoch, gen, epoch); !d.Empty() {
		t.Errorf("after a CREATING report: delta = %+v, want none", d)
	}
	// RUNNING with an address changes the service table.
	if _, _, err := s.ApplyReport(c2, Report{Statuses: []wire.InstanceStatus{{Key: other.Key, Status: wire.StatusRunning, NodeID: "n2", InstanceIP: "10.64.2.5"}}}); err != nil {
		t.Fatal(err)
	}
	if d := s.Snapshot().DesiredFor(c1, epoch, gen, epoch); len(d.Instances) != 0 || !d.NetworkChanged {
		t.Errorf("after a backend came up on c2: delta for c1 = %+v, want only the network", d)
	}
	gen = s.Snapshot().Index()

	if _, err := s.DeleteInstance(a.ServiceID, a.Number); err != nil {
		t.Fatal(err)
	}
	d = s.Snapshot().DesiredFor(c1, epoch, gen, epoch)
	if len(d.Instances) != 0 || !slices.Equal(d.Removed, []string{a.Key}) {
		t.Errorf("after deleting %s: delta = %+v", a.Key, d)
	}

	for name, q := range map[string]struct {
		epoch string
		after uint64
	}{
		"another epoch": {"earlier", gen},
		"future":        {epoch, s.Snapshot().Index() + 10},
		"no generation": {epoch, 0},
	} {
		if d := s.Snapshot().DesiredFor(c1, q.epoch, q.after, epoch); !d.Full || !slices.Equal(keys(d.Instances), []string{b.Key}) {
			t.Errorf("%s: desired = %+v, want the full set", name, d)
		}
	}

	// Removals older than the tombstones kept: the full set.
	s.now = func() time.Time { return time.Now().Add(time.Hour) }
	s.PruneTombstones(time.Minute)
	if d := s.Snapshot().DesiredFor(c1, epoch, gen, epoch); !d.Full {
		t.Errorf("after the removal was forgotten: delta = %+v, want the full set", d)
	}
}

// TestReports: a cluster's report changes only instances assigned to it;
// NO_CAPACITY hands an instance back; usage alone is not written to the
// backend; a full report drops nodes it does not list, a delta only those it
// names.
func TestReports(t *testing.T) {
	mem := NewMemory()
	s := open(t, mem)
	running(t, s)
	c1 := cluster(t, s, "c1", node("n1", 4096, 1), node("n2", 4096, 1))
	c2 := cluster(t, s, "c2", node("n3", 4096, 1))
	mine := instance(t, s, "mine", c1)
	theirs := instance(t, s, "theirs", c2)

	res, tk, err := s.ApplyReport(c1, Report{Statuses: []wire.InstanceStatus{
		{Key: mine.Key, Status: wire.StatusRunning, NodeID: "n1", Node: "n1", InstanceIP: "10.64.1.2", CPUPercent: 5, Logs: "hello\n"},
		{Key: theirs.Key, Status: wire.StatusFailed, NodeID: "n1"},
		{Key: "unknown.0", Status: wire.StatusRunning},
	}})
	if err != nil || res.Released != 0 {
		t.Fatalf("report: %+v, %v", res, err)
	}
	durable(t, s, tk)
	sn := s.Snapshot()
	if in := sn.Instance(mine.Key); in.Status != wire.StatusRunning || in.NodeName != "n1" || in.PlannedNode != "" || in.Logs != "hello\n" {
		t.Errorf("own instance after report = %+v", in)
	}
	if in := sn.Instance(theirs.Key); in.Status != wire.StatusScheduled {
		t.Errorf("another cluster's instance changed by c1's report: %+v", in)
	}
	stored := func() *Instance { return mem.Get(KindInstance, mine.Key).(*Instance) }
	if stored().Status != wire.StatusRunning {
		t.Errorf("stored status = %s", stored().Status)
	}

	// Usage alone: in memory, not written.
	writes := mem.Writes
	if _, _, err := s.ApplyReport(c1, Report{Nodes: []wire.NodeInfo{node("n1", 4096, 55)}, Statuses: []wire.InstanceStatus{
		{Key: mine.Key, Status: wire.StatusRunning, NodeID: "n1", Node: "n1", InstanceIP: "10.64.1.2", CPUPercent: 42},
	}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := s.Snapshot().Instance(mine.Key).CPUPercent; got != 42 {
		t.Errorf("usage in memory = %v, want 42", got)
	}
	if mem.Writes != writes {
		t.Errorf("a usage-only report wrote to the backend (%d writes)", mem.Writes-writes)
	}
	// Liveness and reservations of a node: in memory too.
	busy := node("n1", 4096, 55)
	busy.Active, busy.Reserved = false, wire.Resources{MilliCPU: 1000, MemoryMB: 100}
	if _, _, err := s.ApplyReport(c1, Report{Nodes: []wire.NodeInfo{busy}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if mem.Writes != writes {
		t.Errorf("a node's liveness and reservations were written to the backend")
	}
	if n := s.Snapshot().Nodes(c1)[0]; n.Active || n.Reserved.MemoryMB != 100 {
		t.Errorf("node in memory = %+v", n)
	}
	// Its capacity is stored.
	bigger := busy
	bigger.Capacity.MemoryMB = 8192
	_, tk, err = s.ApplyReport(c1, Report{Nodes: []wire.NodeInfo{bigger}})
	if err != nil {
		t.Fatal(err)
	}
	durable(t, s, tk)
	if got := mem.Get(KindNode, c1+"/n1").(*Node); got.Capacity.MemoryMB != 8192 {
		t.Errorf("stored node capacity = %d, want 8192", got.Capacity.MemoryMB)
	}

	// A delta names a node that left; a full report drops unlisted ones.
	if _, _, err := s.ApplyReport(c1, Report{GoneNodes: []string{"n2"}}); err != nil {
		t.Fatal(err)
	}
	if n := s.Snapshot().Nodes(c1); len(n) != 1 || n[0].ID != "n1" {
		t.Errorf("after n2 left: nodes %v", n)
	}
	if _, _, err := s.ApplyReport(c2, Report{Full: true, Nodes: []wire.NodeInfo{node("n4", 4096, 0)}}); err != nil {
		t.Fatal(err)
	}
	if n := s.Snapshot().Nodes(c2); len(n) != 1 || n[0].ID != "n4" {
		t.Errorf("after a full report listing n4 only: nodes %v", n)
	}

	// NO_CAPACITY hands the instance back, for the root to place elsewhere.
	res, _, err = s.ApplyReport(c1, Report{Statuses: []wire.InstanceStatus{{Key: mine.Key, Status: wire.StatusNoCapacity, Detail: "no node fits"}}})
	if err != nil || res.Released != 1 {
		t.Fatalf("NO_CAPACITY report: %+v, %v", res, err)
	}
	if in := s.Snapshot().Instance(mine.Key); in.ClusterID != "" || !in.Waiting() || in.Detail != "cluster c1: no node fits" {
		t.Errorf("handed-back instance = %+v", in)
	}
	if !s.Snapshot().HasFresh() {
		t.Errorf("a handed-back instance does not wake the scheduler")
	}
}

// TestLoseCluster: a silent cluster's instances are LOST and wait for the
// scheduler, unless the cluster synced after the evidence was taken.
func TestLoseCluster(t *testing.T) {
	s := open(t, NewMemory())
	c1 := cluster(t, s, "c1", node("n1", 4096, 0))
	in := instance(t, s, "a", c1)
	seen := s.Snapshot().Cluster(c1).LastSeen
	time.Sleep(2 * time.Millisecond)
	if _, _, err := s.ApplyReport(c1, Report{}); err != nil {
		t.Fatal(err)
	}
	if lost, _, _ := s.LoseCluster(c1, seen, "silent"); lost {
		t.Fatal("a cluster that synced after the evidence was declared lost")
	}
	seen = s.Snapshot().Cluster(c1).LastSeen
	lost, n, err := s.LoseCluster(c1, seen, "silent for 30s")
	if err != nil || !lost || n != 1 {
		t.Fatalf("LoseCluster = %v, %d, %v", lost, n, err)
	}
	sn := s.Snapshot()
	if got := sn.Instance(in.Key); got.Status != wire.StatusLost || got.ClusterID != "" || got.Detail != "silent for 30s" {
		t.Errorf("instance of the lost cluster = %+v", got)
	}
	if sn.Cluster(c1).Active {
		t.Errorf("lost cluster still active")
	}
	if len(sn.Peers()) != 0 {
		t.Errorf("a lost cluster's nodes are still overlay peers: %v", sn.Peers())
	}
}

// TestBlocksGrowOnDemand: a cluster whose nodes filled its address block
// gets more when it asks, as long as the instance network has room; then
// the root says once that it is full.
func TestBlocksGrowOnDemand(t *testing.T) {
	var logs strings.Builder
	s, err := Open(context.Background(), NewMemory(), Options{
		Log:  slog.New(slog.NewTextHandler(&logs, nil)),
		Plan: AddressPlan{Network: netip.MustParsePrefix("10.64.0.0/20"), BlockBits: 22}, // 4 blocks
	})
	if err != nil {
		t.Fatal(err)
	}
	c1 := cluster(t, s, "c1")
	idx := s.Index()
	if _, _, err := s.ApplyReport(c1, Report{WantBlocks: 2}); err != nil {
		t.Fatal(err)
	}
	if got := s.Snapshot().Blocks(c1); !slices.Equal(got, []string{"10.64.0.0/22", "10.64.4.0/22", "10.64.8.0/22"}) {
		t.Fatalf("c1 blocks after asking for 2 more = %v", got)
	}
	if d := s.Snapshot().DesiredFor(c1, s.Epoch(), idx, s.Epoch()); !d.NetworkChanged {
		t.Errorf("new blocks do not wake the cluster's watch")
	}
	c2 := cluster(t, s, "c2")
	if got := s.Snapshot().Blocks(c2); !slices.Equal(got, []string{"10.64.12.0/22"}) {
		t.Errorf("c2 blocks = %v", got)
	}
	for range 3 {
		if _, _, err := s.ApplyReport(c1, Report{WantBlocks: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(s.Snapshot().Blocks(c1)); got != 3 {
		t.Errorf("c1 has %d blocks after the network filled, want 3", got)
	}
	if n := strings.Count(logs.String(), "instance network full"); n != 1 {
		t.Errorf("'instance network full' logged %d times, want once:\n%s", n, logs.String())
	}
	if _, _, _, _, err := s.RegisterCluster(Registration{Name: "c3"}); err == nil || !strings.Contains(err.Error(), "no free /22 address block") {
		t.Errorf("a cluster registering into a full network: %v", err)
	}
}

// TestBackgroundChangesLand: reports nobody waits for reach the backend
// within a few seconds, also when they come apart in a quiet store.
func TestBackgroundChangesLand(t *testing.T) {
	mem := NewMemory()
	s := open(t, mem)
	running(t, s)
	c1 := cluster(t, s, "c1", node("n1", 4096, 0))
	a := instance(t, s, "a", c1)
	b := instance(t, s, "b", c1)
	report := func(key string) {
		if _, _, err := s.ApplyReport(c1, Report{Statuses: []wire.InstanceStatus{{Key: key, Status: wire.StatusRunning, NodeID: "n1", Node: "n1"}}}); err != nil {
			t.Fatal(err)
		}
	}
	report(a.Key)
	time.Sleep(500 * time.Millisecond) // b is due after a is written
	report(b.Key)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := func(k string) string {
			if o := mem.Get(KindInstance, k); o != nil {
				return o.(*Instance).Status
			}
			return ""
		}
		if got(a.Key) == wire.StatusRunning && got(b.Key) == wire.StatusRunning {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored statuses after 5 s: a %s, b %s; want both RUNNING", got(a.Key), got(b.Key))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
