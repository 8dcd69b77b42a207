package state

import (
	"testing"

	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
)

// setStatus sets an instance's status as a cluster's report would.
func setStatus(t *testing.T, s *Store, key, status, detail string) {
	t.Helper()
	if _, err := s.Write(func(tx *Txn) error {
		in := *first[Instance](tx.r(), tInstances, "id", key)
		in.Status, in.Detail = status, detail
		tx.put(tInstances, KindInstance, key, &in, true)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// oamFixture stores an OAM application of three components deployed in
// three steps: db (1 instance), then migrate (a task), then web (2).
func oamFixture(t *testing.T) (*Store, *Application) {
	s := open(t, NewMemory())
	task := microservice("migrate", "")
	task.OneShot = true
	app := &sla.Application{ApplicationName: "shop", ApplicationNamespace: "default",
		Microservices: []sla.Microservice{microservice("db", ""), task, microservice("web", "")}}
	a, _, err := s.CreateOAMApplication("alice", OAMRequest{Name: "shop", Manifest: "text", App: app,
		Components: []string{"db", "migrate", "web"}, Replicas: []int{1, 1, 2},
		Steps: []OAMStep{{"s1", []string{"db"}}, {"s2", []string{"migrate"}}, {"s3", []string{"web"}}}}, "spec.components")
	if err != nil {
		t.Fatal(err)
	}
	return s, a
}

// counts is the number of instances of each of the app's services.
func counts(s *Store, a *Application) []int {
	sn := s.Snapshot()
	var out []int
	for _, id := range a.Services {
		out = append(out, len(sn.Instances(id)))
	}
	return out
}

func workflow(s *Store) *OAMSource { return s.Snapshot().OAMApp("alice", "shop").OAM }

// TestWorkflowStepsInOrder: each step's instances start only when the step
// before runs (a task's: completed).
func TestWorkflowStepsInOrder(t *testing.T) {
	s, a := oamFixture(t)
	advance := func(want int) {
		t.Helper()
		if n, err := s.AdvanceWorkflows(); err != nil || n != want {
			t.Fatalf("AdvanceWorkflows = %d, %v; want %d", n, err, want)
		}
	}
	for _, st := range []struct {
		do     func()
		counts [3]int
		step   int
		phase  string
	}{
		{func() {}, [3]int{1, 0, 0}, 0, OAMRunning},
		{func() { setStatus(t, s, wire.InstanceKey(a.Services[0], 0), wire.StatusCreating, ""); advance(0) }, [3]int{1, 0, 0}, 0, OAMRunning},
		{func() { setStatus(t, s, wire.InstanceKey(a.Services[0], 0), wire.StatusRunning, ""); advance(1) }, [3]int{1, 1, 0}, 1, OAMRunning},
		{func() { setStatus(t, s, wire.InstanceKey(a.Services[1], 0), wire.StatusCompleted, ""); advance(1) }, [3]int{1, 1, 2}, 2, OAMRunning},
		{func() { setStatus(t, s, wire.InstanceKey(a.Services[2], 0), wire.StatusRunning, ""); advance(0) }, [3]int{1, 1, 2}, 2, OAMRunning},
		{func() { setStatus(t, s, wire.InstanceKey(a.Services[2], 1), wire.StatusRunning, ""); advance(1) }, [3]int{1, 1, 2}, 3, OAMSucceeded},
		// Done is done: a later failure is an instance's, not the workflow's.
		{func() { setStatus(t, s, wire.InstanceKey(a.Services[2], 1), wire.StatusFailed, "x"); advance(0) }, [3]int{1, 1, 2}, 3, OAMSucceeded},
	} {
		st.do()
		got := counts(s, a)
		if [3]int(got) != st.counts || workflow(s).Step != st.step || workflow(s).Phase != st.phase {
			t.Fatalf("instances %v, step %d, phase %s; want %v, %d, %s", got, workflow(s).Step, workflow(s).Phase, st.counts, st.step, st.phase)
		}
	}
}

// TestWorkflowStopsAtAFailedStep: a FAILED instance stops the workflow;
// the status names the step, and later steps start nothing.
func TestWorkflowStopsAtAFailedStep(t *testing.T) {
	s, a := oamFixture(t)
	setStatus(t, s, wire.InstanceKey(a.Services[0], 0), wire.StatusRunning, "")
	if _, err := s.AdvanceWorkflows(); err != nil {
		t.Fatal(err)
	}
	setStatus(t, s, wire.InstanceKey(a.Services[1], 0), wire.StatusFailed, "exit code 3")
	if _, err := s.AdvanceWorkflows(); err != nil {
		t.Fatal(err)
	}
	w := workflow(s)
	if w.Phase != OAMFailed || w.Step != 1 || w.Message != "step s2: component migrate: instance 0 FAILED: exit code 3" {
		t.Errorf("workflow %+v", w)
	}
	if got := counts(s, a); got[2] != 0 {
		t.Errorf("instances %v: the step after the failed one started", got)
	}
}
