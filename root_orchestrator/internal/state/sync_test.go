package state

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
)

func node(id string, memMB int64, cpu float64) wire.NodeInfo {
	return wire.NodeInfo{ID: id, Name: id, Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
		Capacity: wire.Resources{MilliCPU: 4000, MemoryMB: memMB}, CPUPercent: cpu,
		Network: &wire.NodeNetwork{NodeID: id, VTEPMAC: "02:00:00:00:00:01", PublicIP: "192.0.2.1", PublicPort: 4789}}
}

// cluster registers a cluster with one node and returns its id.
func cluster(t *testing.T, s *Store, name string, nodes ...wire.NodeInfo) string {
	t.Helper()
	id, _, block, _, err := s.RegisterCluster(Registration{Name: name})
	if err != nil || block == "" {
		t.Fatalf("register %s: %v (block %q)", name, err, block)
	}
	// Node i gets the (i+1)th /24 of the block, a MAC of its own.
	b := netip.MustParsePrefix(block).Addr().As4()
	for i := range nodes {
		if nw := nodes[i].Network; nw != nil && nw.Subnet == "" {
			cp := *nw
			cp.Subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{b[0], b[1], byte(i + 1), 0}), 24).String()
			cp.VTEPMAC = fmt.Sprintf("02:00:00:%02x:%02x:01", b[1], i+1)
			nodes[i].Network = &cp
		}
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
	if _, _, err := s.ApplyReport(c2, Report{Statuses: []wire.InstanceStatus{{Key: other.Key, Status: wire.StatusRunning, NodeID: "n2", InstanceIP: "10.65.1.5"}}}); err != nil {
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

// TestLoseCluster: a silent cluster's instances become UNKNOWN and stay
// assigned to it (its copies may still run), unless the cluster synced
// after the evidence was taken.
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
	if got := sn.Instance(in.Key); got.Status != wire.StatusUnknown || got.ClusterID != c1 || got.Detail != "silent for 30s" || got.Waiting() {
		t.Errorf("instance of the lost cluster = %+v", got)
	}
	if sn.Cluster(c1).Active {
		t.Errorf("lost cluster still active")
	}
	if len(sn.Peers()) != 0 {
		t.Errorf("a lost cluster's nodes are still overlay peers: %v", sn.Peers())
	}
}

// TestDisconnectPolicies: what happens to the instances of a lost cluster
// follows their service's disconnect policy, and when the cluster comes
// back exactly one copy of each is kept, chosen deterministically; the
// lost cluster's desired set never drops an instance before that decision.
func TestDisconnectPolicies(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		name    string
		policy  *sla.Disconnect
		oneShot bool
		// after the loss
		replaced bool
		// the replacement runs on c2 when c1 comes back, which reports
		// its own copy as back (empty: c1 does not mention it).
		replacementRuns bool
		back            string
		// restarted: c1's copy reports a start after the loss.
		restarted bool
		// where it is at the end, and whether c1 was told to stop its copy
		wantCluster string
		c1Removed   bool
	}{
		{name: "default: replaced, original kept", replaced: true, replacementRuns: true, back: wire.StatusRunning, wantCluster: "c1"},
		{name: "keep_replacement: the replacement runs, c1 stops its copy", policy: &sla.Disconnect{Reconcile: sla.KeepReplacement},
			replaced: true, replacementRuns: true, back: wire.StatusRunning, wantCluster: "c2", c1Removed: true},
		{name: "keep_replacement, replacement not running yet: c1's copy is kept", policy: &sla.Disconnect{Reconcile: sla.KeepReplacement},
			replaced: true, back: wire.StatusRunning, wantCluster: "c1"},
		{name: "c1 lost its copy: the replacement stays", replaced: true, replacementRuns: true, wantCluster: "c2", c1Removed: true},
		{name: "c1's copy failed: the replacement stays", replaced: true, replacementRuns: true, back: wire.StatusFailed, wantCluster: "c2", c1Removed: true},
		{name: "c1's copy started again after the loss: the running replacement stays", replaced: true, replacementRuns: true,
			back: wire.StatusRunning, restarted: true, wantCluster: "c2", c1Removed: true},
		{name: "replace false: waits for c1", policy: &sla.Disconnect{Replace: &no}, back: wire.StatusRunning, wantCluster: "c1"},
		{name: "replace_after not reached: waits", policy: &sla.Disconnect{Replace: &yes, ReplaceAfter: 3600}, back: wire.StatusRunning, wantCluster: "c1"},
		{name: "one-shot: never replaced", oneShot: true, back: wire.StatusCompleted, wantCluster: "c1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, NewMemory())
			ids := map[string]string{}
			ids["c1"] = cluster(t, s, "c1", node("n1", 4096, 0))
			m := microservice("m", "")
			m.Disconnect, m.OneShot = tc.policy, tc.oneShot
			apps, _, err := s.CreateApplications("u", oneApp("a", m))
			if err != nil {
				t.Fatal(err)
			}
			in, _, err := s.AddInstance(apps[0].Services[0])
			if err != nil {
				t.Fatal(err)
			}
			if n, err := s.Assign([]Assignment{{Key: in.Key, ClusterID: ids["c1"], NodeID: "n1"}}); err != nil || n != 1 {
				t.Fatalf("assign: %d, %v", n, err)
			}
			st := wire.InstanceStatus{Key: in.Key, Status: wire.StatusRunning, NodeID: "n1", Node: "n1", InstanceIP: "10.64.0.5"}
			if _, _, err := s.ApplyReport(ids["c1"], Report{Statuses: []wire.InstanceStatus{st}}); err != nil {
				t.Fatal(err)
			}
			at := s.Snapshot().Index()
			if lost, _, err := s.LoseCluster(ids["c1"], s.Snapshot().Cluster(ids["c1"]).LastSeen, "silent"); !lost || err != nil {
				t.Fatalf("LoseCluster: %v %v", lost, err)
			}
			ids["c2"] = cluster(t, s, "c2", node("n2", 4096, 0))
			n, err := s.ReplaceUnknown(time.Now().Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if (n == 1) != tc.replaced {
				t.Fatalf("replaced %d instances, want replaced=%v", n, tc.replaced)
			}
			got := s.Snapshot().Instance(in.Key)
			if !tc.replaced {
				if got.Status != wire.StatusUnknown || got.ClusterID != ids["c1"] {
					t.Fatalf("not replaced: %+v", got)
				}
			} else {
				if got.Status != wire.StatusLost || !got.Waiting() || got.LostFrom != ids["c1"] {
					t.Fatalf("being replaced: %+v", got)
				}
				if _, err := s.Assign([]Assignment{{Key: in.Key, ClusterID: ids["c2"], NodeID: "n2"}}); err != nil {
					t.Fatal(err)
				}
				if tc.replacementRuns {
					rst := wire.InstanceStatus{Key: in.Key, Status: wire.StatusRunning, NodeID: "n2", Node: "n2", InstanceIP: "10.65.1.5"}
					if _, _, err := s.ApplyReport(ids["c2"], Report{Statuses: []wire.InstanceStatus{rst}}); err != nil {
						t.Fatal(err)
					}
				}
			}
			// While c1 is away, neither its delta nor its full set drop it.
			sn := s.Snapshot()
			if d := sn.DesiredFor(ids["c1"], s.Epoch(), at, s.Epoch()); slices.Contains(d.Removed, in.Key) {
				t.Errorf("lost cluster's delta removes the instance before it reported: %+v", d)
			}
			if d := sn.DesiredFor(ids["c1"], "", 0, s.Epoch()); !slices.Contains(keys(d.Instances), in.Key) {
				t.Errorf("lost cluster's full set lacks the instance before it reported: %v", keys(d.Instances))
			}
			// c1 is back with a full report.
			var sts []wire.InstanceStatus
			if tc.back != "" {
				b := st
				b.Status = tc.back
				if tc.restarted {
					b.StartedAt = time.Now()
				} else {
					b.StartedAt = time.Now().Add(-time.Hour)
				}
				sts = append(sts, b)
			}
			res, _, err := s.ApplyReport(ids["c1"], Report{Full: true, Nodes: []wire.NodeInfo{node("n1", 4096, 0)}, Statuses: sts})
			if err != nil || !res.WasInactive {
				t.Fatalf("back: %+v %v", res, err)
			}
			sn = s.Snapshot()
			got = sn.Instance(in.Key)
			if got.ClusterID != ids[tc.wantCluster] || got.LostFrom != "" {
				t.Errorf("instance ends on cluster %q (lost from %q), want %s: %+v", got.ClusterID, got.LostFrom, tc.wantCluster, got)
			}
			d1 := sn.DesiredFor(ids["c1"], s.Epoch(), at, s.Epoch())
			if slices.Contains(d1.Removed, in.Key) != tc.c1Removed {
				t.Errorf("c1 told to stop its copy = %v, want %v (%+v)", !tc.c1Removed, tc.c1Removed, d1)
			}
			full1 := sn.DesiredFor(ids["c1"], "", 0, s.Epoch())
			full2 := sn.DesiredFor(ids["c2"], "", 0, s.Epoch())
			in1, in2 := slices.Contains(keys(full1.Instances), in.Key), slices.Contains(keys(full2.Instances), in.Key)
			if in1 == in2 || in1 != (tc.wantCluster == "c1") {
				t.Errorf("instance in c1's set %v, in c2's %v: want exactly one, on %s", in1, in2, tc.wantCluster)
			}
			if tc.wantCluster == "c1" && tc.replaced {
				// c2 had the replacement: its delta removes it.
				if d2 := sn.DesiredFor(ids["c2"], s.Epoch(), at, s.Epoch()); !slices.Contains(d2.Removed, in.Key) {
					t.Errorf("c2 not told to stop the replacement: %+v", d2)
				}
			}
		})
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

// TestFullSetsListRemovals: a cluster that gets its full set (a new epoch,
// or a generation too old) learns which instances were removed
// explicitly, so that it can tell them from what a confused root forgot.
func TestFullSetsListRemovals(t *testing.T) {
	s := open(t, NewMemory())
	c1 := cluster(t, s, "c1", node("n1", 4096, 0))
	gone := instance(t, s, "a", c1)
	kept := instance(t, s, "b", c1)
	if _, err := s.DeleteInstance(gone.ServiceID, gone.Number); err != nil {
		t.Fatal(err)
	}
	d := s.Snapshot().DesiredFor(c1, "", 0, s.Epoch())
	if !d.Full || !slices.Equal(keys(d.Instances), []string{kept.Key}) || !slices.Equal(d.Removed, []string{gone.Key}) {
		t.Errorf("full set = %v, removed %v; want [%s], removed [%s]", keys(d.Instances), d.Removed, kept.Key, gone.Key)
	}
}

// TestLyingClusterIgnored: a cluster reporting an instance the root
// assigned to another cluster changes nothing, and is counted.
func TestLyingClusterIgnored(t *testing.T) {
	s := open(t, NewMemory())
	c1 := cluster(t, s, "c1", node("n1", 4096, 0))
	c2 := cluster(t, s, "c2", node("n2", 4096, 0))
	in := instance(t, s, "a", c1)
	before := testutil.ToFloat64(mIgnored)
	if _, _, err := s.ApplyReport(c2, Report{Statuses: []wire.InstanceStatus{{Key: in.Key, Status: wire.StatusFailed, Detail: "forged", NodeID: "n2"}}}); err != nil {
		t.Fatal(err)
	}
	if got := s.Snapshot().Instance(in.Key); got.Status != in.Status || got.Detail == "forged" || got.ClusterID != c1 {
		t.Errorf("a status from another cluster was applied: %+v", got)
	}
	if d := testutil.ToFloat64(mIgnored) - before; d != 1 {
		t.Errorf("ignored statuses counted %v, want 1", d)
	}
}
