package dispatch

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// The dispatcher over an in-memory state: no database, no network.

type fixture struct {
	t   *testing.T
	st  *state.Store
	d   *Dispatcher
	now time.Time // the state's wall clock
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	st, err := state.Open(context.Background(), state.NewMemory(), state.Options{Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.st, f.d = st, New(st, 30*time.Second, slog.New(slog.DiscardHandler))
	return f
}

func (f *fixture) cluster(name string, nodes ...wire.NodeInfo) string {
	f.t.Helper()
	id, _, _, _, err := f.st.RegisterCluster(state.Registration{Name: name})
	if err != nil {
		f.t.Fatal(err)
	}
	f.report(id, state.Report{Full: true, Nodes: nodes})
	return id
}

func (f *fixture) report(id string, r state.Report) {
	f.t.Helper()
	if _, _, err := f.st.ApplyReport(id, r); err != nil {
		f.t.Fatal(err)
	}
}

func worker(id string, memMB int64) wire.NodeInfo {
	return wire.NodeInfo{ID: id, Name: id, Arch: "amd64", Virtualizations: []string{"container"}, Active: true,
		Capacity: wire.Resources{MilliCPU: 8000, MemoryMB: memMB}}
}

// service creates a service asking memMB per instance and returns its id.
func (f *fixture) service(name string, memMB int) string {
	f.t.Helper()
	apps, _, err := f.st.CreateApplications("u", &sla.SLA{Applications: []sla.Application{{
		ApplicationName: name, ApplicationNamespace: "ns", Microservices: []sla.Microservice{{
			MicroserviceName: name, MicroserviceNamespace: "ns", Virtualization: "container",
			Code: "docker.io/library/nginx:latest", Memory: memMB, VCPUs: 1}}}}})
	if err != nil {
		f.t.Fatal(err)
	}
	return apps[0].Services[0]
}

func (f *fixture) add(svc string) string {
	f.t.Helper()
	in, _, err := f.st.AddInstance(svc)
	if err != nil {
		f.t.Fatal(err)
	}
	return in.Key
}

func (f *fixture) pass() {
	f.t.Helper()
	if err := f.d.Pass(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) instance(key string) *state.Instance { return f.st.Snapshot().Instance(key) }

// TestPlacementsReserveUntilReported: what an earlier pass assigned to a
// cluster counts against its node until the cluster reports where the
// instance runs; then the cluster's own figures count, once.
func TestPlacementsReserveUntilReported(t *testing.T) {
	f := newFixture(t)
	c := f.cluster("c1", worker("n1", 1000))
	svc := f.service("big", 600)

	a := f.add(svc)
	f.pass()
	if in := f.instance(a); in.ClusterID != c || in.Status != wire.StatusScheduled || in.PlannedNode != "n1" {
		t.Fatalf("first instance = %+v, want SCHEDULED on c1 planned on n1", in)
	}
	b := f.add(svc)
	f.pass() // a later pass: the cluster has not reported a yet
	if in := f.instance(b); in.ClusterID != "" || in.Status != wire.StatusNoCapacity {
		t.Fatalf("second instance = %+v, want NO_CAPACITY (600 of 1000 MB are promised to the first)", in)
	}

	// The cluster places a and reports it with its node's reservation.
	n := worker("n1", 1000)
	n.Reserved = wire.Resources{MilliCPU: 1000, MemoryMB: 600}
	f.report(c, state.Report{Nodes: []wire.NodeInfo{n}, Statuses: []wire.InstanceStatus{{Key: a, Status: wire.StatusCreating, NodeID: "n1", Node: "n1"}}})
	if in := f.instance(a); in.PlannedNode != "" {
		t.Errorf("reported instance still holds a planned reservation: %+v", in)
	}
	small := f.add(f.service("small", 300))
	f.pass()
	if in := f.instance(small); in.ClusterID != c {
		t.Errorf("300 MB did not fit in the 400 MB left (counted twice?): %+v", in)
	}
	if in := f.instance(b); in.ClusterID != "" {
		t.Errorf("600 MB placed where 100 MB are left: %+v", in)
	}
}

// TestLostClusterInstancesMove: a cluster silent past the grace loses its
// instances: UNKNOWN, and at once (the default policy) handed to the
// scheduler as LOST, remembering the cluster that may still run them; the
// next pass places them on a live cluster.
func TestLostClusterInstancesMove(t *testing.T) {
	f := newFixture(t)
	c1 := f.cluster("c1", worker("n1", 4000))
	svc := f.service("web", 100)
	key := f.add(svc)
	f.pass()
	if in := f.instance(key); in.ClusterID != c1 {
		t.Fatalf("instance = %+v, want it on c1 (the only cluster)", in)
	}
	c2 := f.cluster("c2", worker("n2", 4000))

	start := time.Now()
	for s := range 40 { // passes every second; only c2 keeps syncing
		f.now = f.now.Add(time.Second)
		if s > 0 {
			f.report(c2, state.Report{})
		}
		if err := f.d.Liveness(start.Add(time.Duration(s) * time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	in := f.instance(key)
	if in.Status != wire.StatusLost || in.ClusterID != "" || in.LostFrom != c1 {
		t.Fatalf("instance of the silent cluster = %+v, want LOST", in)
	}
	if f.st.Snapshot().Cluster(c1).Active || !f.st.Snapshot().Cluster(c2).Active {
		t.Errorf("cluster activity wrong after the grace")
	}
	f.pass()
	if in := f.instance(key); in.ClusterID != c2 || in.Status != wire.StatusScheduled {
		t.Errorf("lost instance after the next pass = %+v, want SCHEDULED on c2", in)
	}
}

// TestNoClusterSaysSo: with no cluster the reason says that none joined;
// the same verdict is not written again at every pass.
func TestNoClusterSaysSo(t *testing.T) {
	f := newFixture(t)
	key := f.add(f.service("web", 100))
	f.pass()
	in := f.instance(key)
	if in.Status != wire.StatusNoCapacity || in.Detail != "no cluster has joined the root" {
		t.Fatalf("instance = %+v", in)
	}
	if f.st.Snapshot().HasFresh() {
		t.Errorf("a judged instance still wakes the scheduler at every write")
	}
	idx := f.st.Index()
	f.pass()
	if f.st.Index() != idx {
		t.Errorf("an unchanged verdict was written again")
	}
}
