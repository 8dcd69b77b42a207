package state

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestUpdateJobs: a changed list gets a new version, is stored, and goes to
// the cluster with the instances' specs; an unchanged list or a refused
// change stores nothing; the reported grant is kept per instance.
func TestUpdateJobs(t *testing.T) {
	mem := NewMemory()
	s := open(t, mem)
	running(t, s)
	c1 := cluster(t, s, "c1", node("n1", 4096, 0))
	in := instance(t, s, "a", c1)
	epoch := s.Epoch()
	gen := s.Snapshot().Index()

	set := func(jobs ...string) func([]string) ([]string, error) {
		return func([]string) ([]string, error) { return jobs, nil }
	}
	svc, tk, err := s.UpdateJobs(in.ServiceID, set("cam-1", "cam-2"))
	if err != nil {
		t.Fatal(err)
	}
	durable(t, s, tk)
	if svc.JobsVersion != 1 || !slices.Equal(svc.Jobs, []string{"cam-1", "cam-2"}) || svc.JobsLease != 30*time.Second {
		t.Fatalf("after set: %+v", svc)
	}
	d := s.Snapshot().DesiredFor(c1, epoch, gen, epoch)
	if len(d.Instances) != 1 || !slices.Equal(d.Instances[0].Jobs, svc.Jobs) || d.Instances[0].JobsLease != 30 {
		t.Fatalf("the cluster's delta after a new list = %+v", d.Instances)
	}
	gen = s.Snapshot().Index()

	// The same list again: nothing changes.
	if svc, _, err := s.UpdateJobs(in.ServiceID, set("cam-1", "cam-2")); err != nil || svc.JobsVersion != 1 {
		t.Fatalf("same list: %+v, %v", svc, err)
	}
	if d := s.Snapshot().DesiredFor(c1, epoch, gen, epoch); !d.Empty() {
		t.Errorf("an unchanged list changed the desired set: %+v", d)
	}
	// A refused change changes nothing.
	bad := errors.New("no")
	if _, _, err := s.UpdateJobs(in.ServiceID, func([]string) ([]string, error) { return nil, bad }); !errors.Is(err, bad) {
		t.Fatalf("refused change: %v", err)
	}
	if _, _, err := s.UpdateJobs("nope", set("x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown service: %v", err)
	}

	// The cluster reports what the instance applied.
	if _, _, err := s.ApplyReport(c1, Report{Statuses: []wire.InstanceStatus{{Key: in.Key, Status: wire.StatusRunning,
		NodeID: "n1", Node: "n1", JobsVersion: 3, Jobs: []string{"cam-2"}}}}); err != nil {
		t.Fatal(err)
	}
	if got := s.Snapshot().Instance(in.Key); got.JobsVersion != 3 || got.JobsHeld != "cam-2" {
		t.Errorf("reported grant: version %d jobs %q", got.JobsVersion, got.JobsHeld)
	}
	// A report with a job set that is no job list is not believed.
	if _, _, err := s.ApplyReport(c1, Report{Statuses: []wire.InstanceStatus{{Key: in.Key, Status: wire.StatusRunning,
		NodeID: "n1", Node: "n1", JobsVersion: 4, Jobs: []string{"a", "a"}}}}); err != nil {
		t.Fatal(err)
	}
	if got := s.Snapshot().Instance(in.Key); got.JobsVersion != 0 || got.JobsHeld != "" {
		t.Errorf("a bad job set was kept: version %d jobs %q", got.JobsVersion, got.JobsHeld)
	}

	// A service spread over two clusters gets no jobs (each would share
	// them among its own instances); removing all jobs is fine.
	c2 := cluster(t, s, "c2", node("n2", 4096, 0))
	second, _, err := s.AddInstance(in.ServiceID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Assign([]Assignment{{Key: second.Key, ClusterID: c2, NodeID: "n2"}}); err != nil {
		t.Fatal(err)
	}
	var ce *ConflictError
	if _, _, err := s.UpdateJobs(in.ServiceID, set("cam-3")); !errors.As(err, &ce) {
		t.Errorf("jobs for a service in two clusters: %v", err)
	}
	if got := s.Snapshot().Service(in.ServiceID); got.JobsVersion != 1 {
		t.Errorf("a refused list was stored: %+v", got)
	}

	// The list survives a restart.
	again := open(t, mem)
	if got := again.Snapshot().Service(in.ServiceID); got.JobsVersion != 1 || !slices.Equal(got.Jobs, []string{"cam-1", "cam-2"}) {
		t.Errorf("after restart: %+v", got)
	}
}
