package state

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

func TestRollStep(t *testing.T) {
	in := func(n int, status string) *Instance { return &Instance{Number: n, Status: status} }
	run, cre, fail := wire.StatusRunning, wire.StatusCreating, wire.StatusFailed
	for _, c := range []struct {
		name       string
		news, olds []*Instance
		replicas   int
		want       int
		wantOld    int // rollRemoveOld: its number
	}{
		{"first new instance", nil, []*Instance{in(0, run), in(1, run)}, 2, rollAddNew, 0},
		{"new one on its way", []*Instance{in(2, cre)}, []*Instance{in(0, run), in(1, run)}, 2, rollWait, 0},
		{"new one runs: highest old goes", []*Instance{in(2, run)}, []*Instance{in(0, run), in(1, run)}, 2, rollRemoveOld, 1},
		{"one old left, one new: add", []*Instance{in(2, run)}, []*Instance{in(0, run)}, 2, rollAddNew, 0},
		{"two new run: last old goes", []*Instance{in(2, run), in(3, run)}, []*Instance{in(0, run)}, 2, rollRemoveOld, 0},
		{"done", []*Instance{in(2, run), in(3, run)}, nil, 2, rollDone, 0},
		{"a new one failed", []*Instance{in(2, fail)}, []*Instance{in(0, run)}, 1, rollFailed, 0},
		{"old instance not running does not block", []*Instance{in(2, run)}, []*Instance{in(0, cre)}, 1, rollRemoveOld, 0},
		{"no instances at all", nil, nil, 0, rollDone, 0},
		{"completed counts as running", []*Instance{in(1, wire.StatusCompleted)}, []*Instance{in(0, run)}, 1, rollRemoveOld, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := rollStep(c.news, c.olds, c.replicas, false)
			if got.action != c.want {
				t.Fatalf("action %d, want %d", got.action, c.want)
			}
			if c.want == rollRemoveOld && got.old.Number != c.wantOld {
				t.Errorf("removes old %d, want %d", got.old.Number, c.wantOld)
			}
		})
	}
}

// TestUpdateService: an edit of the spec replaces the instances one at a
// time, a new one running before an old one goes, and keeps the service's
// id and IP; an edit that changes nothing of the spec restarts nothing;
// bad edits change nothing.
func TestUpdateService(t *testing.T) {
	s := open(t, NewMemory())
	apps, _, err := s.CreateApplications("alice", oneApp("shop", microservice("web", "")))
	if err != nil {
		t.Fatal(err)
	}
	id := apps[0].Services[0]
	for range 2 {
		if _, _, err := s.AddInstance(id); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(t, s, wire.InstanceKey(id, 0), wire.StatusRunning, "")
	setStatus(t, s, wire.InstanceKey(id, 1), wire.StatusRunning, "")
	before := *s.Snapshot().Service(id)
	keys := func() []string {
		var out []string
		for _, in := range s.Snapshot().Instances(id) {
			tag := "new"
			if in.Spec != nil {
				tag = "old:" + in.Spec.Code
			}
			out = append(out, in.Key[len(id):]+" "+tag+" "+in.Status)
		}
		return out
	}
	edit := func(code string, q Quota) error {
		m := microservice("web", "")
		m.Code = code
		_, _, err := s.UpdateService(EditRequest{ServiceID: id, Service: &m, Path: "ms", Quota: q})
		return err
	}

	// Same spec: nothing changes.
	if err := edit("docker.io/library/nginx:latest", Quota{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys(), ","); got != ".0 new RUNNING,.1 new RUNNING" {
		t.Fatalf("after a no-op edit: %s", got)
	}
	// A new allow_from alone: the overlay's index moves, nothing restarts.
	net := s.Snapshot().NetIndex()
	allow := microservice("web", "")
	allow.AllowFrom = []string{"bob"}
	if _, _, err := s.UpdateService(EditRequest{ServiceID: id, Service: &allow, Path: "ms"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys(), ","); got != ".0 new RUNNING,.1 new RUNNING" || s.Snapshot().Service(id).Rollout != nil {
		t.Fatalf("after an allow_from edit: %s, rollout %+v", got, s.Snapshot().Service(id).Rollout)
	}
	if !slices.Equal(s.Snapshot().Service(id).Spec.AllowFrom, []string{"bob"}) || s.Snapshot().NetIndex() == net {
		t.Fatalf("an allow_from edit: stored %q, overlay index moved: %v", s.Snapshot().Service(id).Spec.AllowFrom, s.Snapshot().NetIndex() != net)
	}
	// Bad edits: nothing changes.
	m := microservice("other", "")
	var ce *ConflictError
	if _, _, err := s.UpdateService(EditRequest{ServiceID: id, Service: &m, Path: "ms"}); !errors.As(err, &ce) || ce.Field != "ms.microservice_name" {
		t.Fatalf("rename: %v", err)
	}
	var qe *QuotaError
	big := microservice("web", "")
	big.Memory = 600
	if _, _, err := s.UpdateService(EditRequest{ServiceID: id, Service: &big, Quota: Quota{MemoryMB: 1000}}); !errors.As(err, &qe) || qe.Resource != "memory_mb" {
		t.Fatalf("edit beyond the quota: %v", err)
	}
	if got := *s.Snapshot().Service(id); got.Spec.MemoryMB != before.Spec.MemoryMB || got.Rollout != nil {
		t.Fatalf("a refused edit changed the service: %+v", got)
	}

	// New image: one new instance, then old ones go as new ones run.
	if err := edit("img:v2", Quota{MemoryMB: 1000}); err != nil {
		t.Fatal(err)
	}
	svc := s.Snapshot().Service(id)
	if svc.Spec.Code != "img:v2" || svc.RRIP != before.RRIP || svc.Rollout == nil || svc.Rollout.Replicas != 2 {
		t.Fatalf("edited service: %+v", svc)
	}
	want := func(step string, w ...string) {
		t.Helper()
		if got := strings.Join(keys(), ","); got != strings.Join(w, ",") {
			t.Fatalf("%s: %s; want %s", step, got, strings.Join(w, ","))
		}
	}
	old := "old:docker.io/library/nginx:latest RUNNING"
	want("edit", ".0 "+old, ".1 "+old, ".2 new REQUESTED")
	if got := Spec(svc, s.Snapshot().Instance(wire.InstanceKey(id, 0))).Code; got != "docker.io/library/nginx:latest" {
		t.Errorf("an old instance's spec has code %s", got)
	}
	if n, _ := s.AdvanceWorkflows(); n != 0 {
		t.Fatalf("moved on before the new instance runs")
	}
	setStatus(t, s, wire.InstanceKey(id, 2), wire.StatusRunning, "")
	s.AdvanceWorkflows()
	want("new one runs", ".0 "+old, ".2 new RUNNING")
	s.AdvanceWorkflows()
	want("next", ".0 "+old, ".2 new RUNNING", ".3 new REQUESTED")
	setStatus(t, s, wire.InstanceKey(id, 3), wire.StatusFailed, "exit 1")
	s.AdvanceWorkflows()
	want("failed", ".0 "+old, ".2 new RUNNING", ".3 new FAILED")
	if r := s.Snapshot().Service(id).Rollout; r == nil || !strings.Contains(r.Message, "new instance 3 FAILED: exit 1") {
		t.Fatalf("rollout after a failure: %+v", r)
	}
	setStatus(t, s, wire.InstanceKey(id, 3), wire.StatusRunning, "")
	if n, _ := s.AdvanceWorkflows(); n != 0 {
		t.Fatalf("a stopped rollout moved on")
	}
	// A new edit starts again from there: the instance beyond the count
	// goes first.
	if err := edit("img:v3", Quota{}); err != nil {
		t.Fatal(err)
	}
	want("second edit", ".0 "+old, ".2 old:img:v2 RUNNING")
	for i := 0; i < 10; i++ {
		s.AdvanceWorkflows()
		for _, in := range s.Snapshot().Instances(id) {
			if in.Status == wire.StatusRequested {
				setStatus(t, s, in.Key, wire.StatusRunning, "")
			}
		}
	}
	want("done", ".4 new RUNNING", ".5 new RUNNING")
	if r := s.Snapshot().Service(id).Rollout; r != nil {
		t.Fatalf("rollout left after it ended: %+v", r)
	}
}
