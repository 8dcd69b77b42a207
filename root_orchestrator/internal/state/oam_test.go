package state

import (
	"fmt"
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

// runWithIP makes an instance RUNNING at ip, as a cluster's report would.
func runWithIP(t *testing.T, s *Store, key, ip string) {
	t.Helper()
	if _, err := s.Write(func(tx *Txn) error {
		in := *first[Instance](tx.r(), tInstances, "id", key)
		in.Status, in.InstanceIP = wire.StatusRunning, ip
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

// TestUpdateOAMApplication: a new revision creates added components,
// deletes removed ones, scales one whose replicas changed without touching
// its instances, and replaces one whose spec changed, keeping its service
// IP; the workflow is then the update's, done when everything runs.
func TestUpdateOAMApplication(t *testing.T) {
	s, a := oamFixture(t)
	update := func(app *sla.Application, names []string, replicas []int) (*Application, error) {
		a, _, err := s.UpdateOAMApplication("alice", OAMRequest{Name: "shop", Manifest: "v2", App: app, Components: names, Replicas: replicas}, "spec.components")
		return a, err
	}
	base := func() *sla.Application {
		task := microservice("migrate", "")
		task.OneShot = true
		return &sla.Application{ApplicationName: "shop", ApplicationNamespace: "default",
			Microservices: []sla.Microservice{microservice("db", ""), task, microservice("web", "")}}
	}
	for i, n := range []int{1, 1, 2} {
		for k := range n {
			setStatus(t, s, wire.InstanceKey(a.Services[i], k), wire.StatusRunning, "")
		}
		if _, err := s.AdvanceWorkflows(); err != nil {
			t.Fatal(err)
		}
	}
	sn := s.Snapshot()
	dbIP, web0 := sn.Service(a.Services[0]).RRIP, sn.Instance(wire.InstanceKey(a.Services[2], 0))

	// db's memory changes, migrate goes, web scales to 3, cache comes.
	next := base()
	next.Microservices[0].Memory = 200
	next.Microservices = append([]sla.Microservice{next.Microservices[0], next.Microservices[2]}, microservice("cache", ""))
	got, err := update(next, []string{"db", "web", "cache"}, []int{1, 3, 1})
	if err != nil {
		t.Fatal(err)
	}
	sn = s.Snapshot()
	if got.OAM.Revision != 2 || len(got.OAM.Revisions) != 2 || got.OAM.Manifest != "v2" || len(got.OAM.Components) != 3 ||
		got.OAM.Phase != OAMRunning || got.OAM.Steps[0].Name != "update" {
		t.Fatalf("after the update: %+v", got.OAM)
	}
	dbComp := got.OAM.Components[0]
	db := sn.Service(dbComp.ServiceID)
	if db.ID == a.Services[0] || dbComp.Replacing != a.Services[0] || db.Spec.MemoryMB != 200 || len(sn.Instances(db.ID)) != 1 ||
		len(sn.Instances(a.Services[0])) != 1 {
		t.Errorf("db's replacement did not start with one new instance beside the old: %+v", dbComp)
	}
	if sn.Service(a.Services[1]) != nil || len(sn.Instances(a.Services[1])) != 0 {
		t.Error("migrate not deleted")
	}
	if got.OAM.Components[1].ServiceID != a.Services[2] || len(sn.Instances(a.Services[2])) != 3 || sn.Instance(web0.Key).Status != wire.StatusRunning {
		t.Errorf("web not scaled in place: %+v, %d instances", got.OAM.Components[1], len(sn.Instances(a.Services[2])))
	}
	if c := sn.Service(got.OAM.Components[2].ServiceID); c == nil || c.Name != "cache" || len(sn.Instances(c.ID)) != 1 {
		t.Errorf("cache not created: %+v", c)
	}
	for range 3 {
		for _, c := range workflow(s).Components {
			for _, in := range s.Snapshot().Instances(c.ServiceID) {
				setStatus(t, s, in.Key, wire.StatusRunning, "")
			}
		}
		if _, err := s.AdvanceWorkflows(); err != nil {
			t.Fatal(err)
		}
	}
	sn = s.Snapshot()
	app := sn.OAMApp("alice", "shop")
	if w := app.OAM; w.Phase != OAMSucceeded || w.Components[0].Replacing != "" || sn.Service(a.Services[0]) != nil ||
		sn.Service(dbComp.ServiceID).RRIP != dbIP || len(app.Services) != 3 {
		t.Errorf("after the replacement: %+v, services %v, db %+v", w, app.Services, sn.Service(dbComp.ServiceID))
	}
	// Scaling down removes the highest-numbered instances.
	if _, err := update(next, []string{"db", "web", "cache"}, []int{1, 1, 1}); err != nil {
		t.Fatal(err)
	}
	if ins := s.Snapshot().Instances(a.Services[2]); len(ins) != 1 || ins[0].Number != 0 {
		t.Errorf("web after scaling to 1: %+v", ins)
	}
}

// TestReplacementOneInstanceAtATime: a changed component is replaced one
// instance at a time, the next only after the new one runs; the old
// service IP reaches old and new instances meanwhile and passes to the new
// service at the end; a FAILED new instance stops the replacement with the
// old instances still there.
func TestReplacementOneInstanceAtATime(t *testing.T) {
	s := open(t, NewMemory())
	app := func(image string) *sla.Application {
		m := microservice("web", "10.30.9.9")
		m.Code = image
		return &sla.Application{ApplicationName: "shop", ApplicationNamespace: "default", Microservices: []sla.Microservice{m}}
	}
	req := func(image string) OAMRequest {
		return OAMRequest{Name: "shop", Manifest: image, App: app(image), Components: []string{"web"}, Replicas: []int{2},
			Steps: []OAMStep{{"deploy", []string{"web"}}}}
	}
	a, _, err := s.CreateOAMApplication("alice", req("docker.io/library/nginx:1"), "spec.components")
	if err != nil {
		t.Fatal(err)
	}
	ips := 0
	run := func(key string) { // RUNNING with an address of its own
		t.Helper()
		ips++
		runWithIP(t, s, key, fmt.Sprintf("10.64.0.%d", ips))
	}
	oldID := a.Services[0]
	run(wire.InstanceKey(oldID, 0))
	run(wire.InstanceKey(oldID, 1))
	if _, err := s.AdvanceWorkflows(); err != nil {
		t.Fatal(err)
	}
	up, _, err := s.UpdateOAMApplication("alice", req("docker.io/library/nginx:2"), "spec.components")
	if err != nil {
		t.Fatal(err)
	}
	newID := up.OAM.Components[0].ServiceID
	// backends is the number of backends behind 10.30.9.9.
	backends := func() int {
		for _, r := range s.Snapshot().ServiceTable() {
			if r.IP == "10.30.9.9" {
				return len(r.Backends)
			}
		}
		return -1
	}
	state := func() string {
		sn := s.Snapshot()
		return fmt.Sprintf("old %d new %d backends %d", len(sn.Instances(oldID)), len(sn.Instances(newID)), backends())
	}
	advance := func() {
		t.Helper()
		if _, err := s.AdvanceWorkflows(); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range []struct {
		do   func()
		want string
	}{
		{func() {}, "old 2 new 1 backends 2"},
		{advance, "old 2 new 1 backends 2"}, // the new one does not run yet
		{func() { run(wire.InstanceKey(newID, 0)); advance() }, "old 1 new 1 backends 2"},
		{advance, "old 1 new 2 backends 2"},
		{func() { run(wire.InstanceKey(newID, 1)); advance() }, "old 0 new 2 backends 2"},
		{advance, "old 0 new 2 backends 2"},
	} {
		st.do()
		if got := state(); got != st.want {
			t.Fatalf("%s, want %s", got, st.want)
		}
	}
	sn := s.Snapshot()
	if svc := sn.Service(newID); sn.Service(oldID) != nil || svc.RRIP != "10.30.9.9" || workflow(s).Phase != OAMSucceeded ||
		len(sn.OAMApp("alice", "shop").Services) != 1 {
		t.Errorf("after the replacement: old %v, new %+v, workflow %+v", sn.Service(oldID), svc, workflow(s))
	}

	// A new instance that fails stops the next replacement; the old ones stay.
	if _, _, err := s.UpdateOAMApplication("alice", req("docker.io/library/nginx:3"), "spec.components"); err != nil {
		t.Fatal(err)
	}
	third := workflow(s).Components[0].ServiceID
	setStatus(t, s, wire.InstanceKey(third, 0), wire.StatusFailed, "pull failed")
	advance()
	if w := workflow(s); w.Phase != OAMFailed || w.Message != "step update: component web: new instance 0 FAILED: pull failed; the old instances keep running" ||
		len(s.Snapshot().Instances(newID)) != 2 {
		t.Errorf("workflow %+v, %d old instances", w, len(s.Snapshot().Instances(newID)))
	}
}
