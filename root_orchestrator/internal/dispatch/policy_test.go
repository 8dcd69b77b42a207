package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// serviceWith creates a service of one 100 MB container microservice,
// changed by edit, and returns its id.
func (f *fixture) serviceWith(name string, edit func(*sla.Microservice)) string {
	f.t.Helper()
	m := sla.Microservice{MicroserviceName: name, MicroserviceNamespace: "ns", Virtualization: "container",
		Code: "docker.io/library/nginx:latest", Memory: 100, VCPUs: 1}
	edit(&m)
	apps, _, err := f.st.CreateApplications("u", &sla.SLA{Applications: []sla.Application{{
		ApplicationName: name, ApplicationNamespace: "ns", Microservices: []sla.Microservice{m}}}})
	if err != nil {
		f.t.Fatal(err)
	}
	return apps[0].Services[0]
}

// lose declares cluster id lost as the dispatcher would: it stays silent
// past the grace while the others keep syncing.
func (f *fixture) lose(id string, others ...string) {
	f.t.Helper()
	start := time.Now()
	for s := range 40 {
		f.now = f.now.Add(time.Second)
		for _, o := range others {
			if s > 0 {
				f.report(o, state.Report{})
			}
		}
		if err := f.d.Liveness(start.Add(time.Duration(s) * time.Second)); err != nil {
			f.t.Fatal(err)
		}
	}
	if f.st.Snapshot().Cluster(id).Active {
		f.t.Fatalf("cluster %s still active after 40 s of silence", id)
	}
}

// TestPlacementChoices: where the root places an instance, over the
// clusters' reported nodes, or why it cannot.
func TestPlacementChoices(t *testing.T) {
	noEdit := func(*sla.Microservice) {}
	for _, tc := range []struct {
		name     string
		clusters map[string]wire.NodeInfo // cluster name → its one node
		lost     string                   // a cluster lost before the pass
		edit     func(*sla.Microservice)
		want     string // the cluster's name; "" for NO_CAPACITY
	}{
		{name: "the one cluster with room", clusters: map[string]wire.NodeInfo{"small": worker("n1", 200), "big": worker("n2", 4000)},
			edit: func(m *sla.Microservice) { m.Memory = 1000 }, want: "big"},
		{name: "a lost cluster takes nothing", clusters: map[string]wire.NodeInfo{"big": worker("n1", 8000), "small": worker("n2", 500)},
			lost: "big", edit: noEdit, want: "small"},
		{name: "only lost clusters", clusters: map[string]wire.NodeInfo{"big": worker("n1", 8000)}, lost: "big", edit: noEdit},
		{name: "no room anywhere", clusters: map[string]wire.NodeInfo{"a": worker("n1", 500), "b": worker("n2", 500)},
			edit: func(m *sla.Microservice) { m.Memory = 1000 }},
		{name: "no node runs the virtualization", clusters: map[string]wire.NodeInfo{"a": worker("n1", 4000)},
			edit: func(m *sla.Microservice) { m.Virtualization, m.Code = "wasm", "https://example.com/m.wasm" }},
		{name: "no node of the architecture", clusters: map[string]wire.NodeInfo{"a": worker("n1", 4000)},
			edit: func(m *sla.Microservice) { m.Arch = []string{"arm64"} }},
		{name: "the node of the architecture", clusters: map[string]wire.NodeInfo{"a": worker("n1", 4000), "b": func() wire.NodeInfo {
			n := worker("n2", 4000)
			n.Arch = "arm64"
			return n
		}()}, edit: func(m *sla.Microservice) { m.Arch = []string{"arm64"} }, want: "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ids := map[string]string{}
			for name, n := range tc.clusters {
				ids[name] = f.cluster(name, n)
			}
			if tc.lost != "" {
				var others []string
				for name, id := range ids {
					if name != tc.lost {
						others = append(others, id)
					}
				}
				f.lose(ids[tc.lost], others...)
			}
			key := f.add(f.serviceWith("svc", tc.edit))
			f.pass()
			in := f.instance(key)
			if tc.want == "" {
				if in.Status != wire.StatusNoCapacity || in.ClusterID != "" || in.Detail == "" {
					t.Errorf("instance %+v; want NO_CAPACITY with a reason", in)
				}
				return
			}
			if in.ClusterID != ids[tc.want] || in.Status != wire.StatusScheduled {
				t.Errorf("instance on %q (%s); want SCHEDULED on %s (%s)", in.ClusterID, in.Status, tc.want, ids[tc.want])
			}
		})
	}
}

// TestDisconnectPolicies: what becomes of a lost cluster's instances is
// their service's disconnect policy: replaced at once (the default), not
// replaced, or replaced only after a while; an instance that ended is left
// as it is.
func TestDisconnectPolicies(t *testing.T) {
	no, yes := false, true
	for _, tc := range []struct {
		name       string
		disconnect *sla.Disconnect
		oneShot    bool
		jobs       []string
		ended      string // a status the cluster reported before it was lost
		wantStatus string
		wantMoved  bool // placed on the live cluster by the next pass
	}{
		{name: "default: replaced at once", wantStatus: wire.StatusLost, wantMoved: true},
		{name: "replace: true", disconnect: &sla.Disconnect{Replace: &yes}, wantStatus: wire.StatusLost, wantMoved: true},
		{name: "replace: false", disconnect: &sla.Disconnect{Replace: &no}, wantStatus: wire.StatusUnknown},
		{name: "replaced after an hour", disconnect: &sla.Disconnect{ReplaceAfter: 3600}, wantStatus: wire.StatusUnknown},
		{name: "a one-shot instance is never replaced", oneShot: true, wantStatus: wire.StatusUnknown},
		{name: "a job pool waits for its cluster", jobs: []string{"a"}, wantStatus: wire.StatusUnknown},
		{name: "a completed one-shot instance stays completed", oneShot: true, ended: wire.StatusCompleted, wantStatus: wire.StatusCompleted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			// ReplaceUnknown counts on the wall clock: the state's clock a
			// minute behind it, so that the 40 s of the loss are past.
			f.now = time.Now().Add(-time.Minute)
			c1 := f.cluster("c1", worker("n1", 4000))
			key := f.add(f.serviceWith("svc", func(m *sla.Microservice) { m.Disconnect, m.OneShot, m.Jobs = tc.disconnect, tc.oneShot, tc.jobs }))
			f.pass()
			status := wire.StatusRunning
			if tc.ended != "" {
				status = tc.ended
			}
			f.report(c1, state.Report{Statuses: []wire.InstanceStatus{{Key: key, Status: status, NodeID: "n1", Node: "n1"}}})
			c2 := f.cluster("c2", worker("n2", 4000))
			f.lose(c1, c2)
			in := f.instance(key)
			if in.Status != tc.wantStatus {
				t.Fatalf("after the loss: %s (%s); want %s", in.Status, in.Detail, tc.wantStatus)
			}
			f.pass()
			in = f.instance(key)
			if moved := in.ClusterID == c2; moved != tc.wantMoved {
				t.Errorf("after the next pass: on %q (%s); want moved to c2: %v", in.ClusterID, in.Status, tc.wantMoved)
			}
			if !tc.wantMoved && in.ClusterID != c1 {
				t.Errorf("an instance that is not replaced left its cluster: on %q", in.ClusterID)
			}
		})
	}
}

// TestRunPlacesWhatArrives: the loop places an instance as soon as it is
// added, without waiting for its tick, and ends with its context.
func TestRunPlacesWhatArrives(t *testing.T) {
	f := newFixture(t)
	f.d.every = time.Hour // only a change can wake it
	c := f.cluster("c1", worker("n1", 4000))
	svc := f.service("web", 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.d.Run(ctx); close(done) }()
	for i := range 3 {
		key := f.add(svc)
		deadline := time.Now().Add(5 * time.Second)
		for f.instance(key).ClusterID != c {
			if time.Now().After(deadline) {
				t.Fatalf("instance %d not placed within 5 s: %+v", i, f.instance(key))
			}
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end with its context")
	}
}
