package state

import (
	"errors"
	"fmt"
	"testing"

	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
)

// job is a one-shot service with completions n (1 vcpu, 100 MB each).
func job(name string, n int) sla.Microservice {
	m := microservice(name, "")
	m.OneShot, m.Completions = true, n
	return m
}

// TestQuotaCountsWhatIsDesired: an indexed job's completions, created with
// its service, and an OAM workflow's later steps count against the quota
// at the request that asks for them; a refused request stores nothing.
func TestQuotaCountsWhatIsDesired(t *testing.T) {
	threeSteps := func(q Quota) OAMRequest {
		app := &sla.Application{ApplicationName: "shop", ApplicationNamespace: "default",
			Microservices: []sla.Microservice{microservice("db", ""), microservice("web", "")}}
		return OAMRequest{Name: "shop", Manifest: "text", App: app, Components: []string{"db", "web"}, Replicas: []int{1, 3},
			Steps: []OAMStep{{"s1", []string{"db"}}, {"s2", []string{"web"}}}, Quota: q}
	}
	for _, tc := range []struct {
		name     string
		q        Quota
		create   func(s *Store, q Quota) error
		resource string // "" when it passes
		used     Quota  // the owner's usage after it
	}{
		{"completions within", Quota{Instances: 5}, func(s *Store, q Quota) error {
			_, _, err := s.CreateApplicationsWithin("alice", oneApp("a", job("j", 5)), q)
			return err
		}, "", Quota{5, 5000, 500}},
		{"completions beyond instances", Quota{Instances: 4}, func(s *Store, q Quota) error {
			_, _, err := s.CreateApplicationsWithin("alice", oneApp("a", job("j", 5)), q)
			return err
		}, "instances", Quota{}},
		{"completions beyond memory", Quota{MemoryMB: 499}, func(s *Store, q Quota) error {
			_, _, err := s.CreateApplicationsWithin("alice", oneApp("a", microservice("web", ""), job("j", 5)), q)
			return err
		}, "memory_mb", Quota{}},
		{"completions of an added service", Quota{MilliCPU: 2000}, func(s *Store, q Quota) error {
			apps, _, err := s.CreateApplications("alice", oneApp("a", microservice("web", "")))
			if err != nil {
				return fmt.Errorf("setup: %w", err)
			}
			_, _, err = s.AddServicesWithin(apps[0].ID, []sla.Microservice{job("j", 3)}, "microservices", q)
			return err
		}, "milli_cpu", Quota{}},
		{"workflow's later steps within", Quota{Instances: 4}, func(s *Store, q Quota) error {
			_, _, err := s.CreateOAMApplication("alice", threeSteps(q), "spec.components")
			return err
		}, "", Quota{4, 4000, 400}}, // 1 stored, 3 owed
		{"workflow's later steps beyond", Quota{Instances: 3}, func(s *Store, q Quota) error {
			_, _, err := s.CreateOAMApplication("alice", threeSteps(q), "spec.components")
			return err
		}, "instances", Quota{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, NewMemory())
			err := tc.create(s, tc.q)
			before := s.Snapshot().Index()
			var qe *QuotaError
			switch {
			case tc.resource == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.resource != "" && (!errors.As(err, &qe) || qe.Resource != tc.resource || qe.Owner != "alice"):
				t.Fatalf("err %v, want a QuotaError on %s", err, tc.resource)
			}
			if u := s.Snapshot().Usage("alice"); u != tc.used {
				t.Errorf("usage %+v, want %+v", u, tc.used)
			}
			if tc.resource != "" {
				if after := s.Snapshot().Index(); after != before {
					t.Errorf("index moved %d → %d", before, after)
				}
			}
		})
	}
}

// TestRollingUpdateWithinQuota: an OAM update whose surge instance would
// pass the quota rolls without surge (an old instance goes before each new
// one comes), never beyond the quota; an update whose end would pass the
// quota is refused and changes nothing.
func TestRollingUpdateWithinQuota(t *testing.T) {
	req := func(image string, memory int, q Quota) OAMRequest {
		m := microservice("web", "10.30.9.9")
		m.Code, m.Memory = image, memory
		app := &sla.Application{ApplicationName: "shop", ApplicationNamespace: "default", Microservices: []sla.Microservice{m}}
		return OAMRequest{Name: "shop", Manifest: image, App: app, Components: []string{"web"}, Replicas: []int{2},
			Steps: []OAMStep{{"deploy", []string{"web"}}}, Quota: q}
	}
	for _, tc := range []struct {
		name  string
		q     Quota
		steps []string // after the update, then after each run-and-advance
	}{
		{"room for the surge", Quota{Instances: 3}, []string{"old 2 new 1", "old 1 new 1", "old 1 new 2", "old 0 new 2"}},
		{"no room: stop then start", Quota{Instances: 2}, []string{"old 1 new 0", "old 1 new 1", "old 0 new 1", "old 0 new 2"}},
		{"no memory for it", Quota{MemoryMB: 250}, []string{"old 1 new 0", "old 1 new 1", "old 0 new 1", "old 0 new 2"}},
		{"no quota", Quota{}, []string{"old 2 new 1", "old 1 new 1", "old 1 new 2", "old 0 new 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, NewMemory())
			a, _, err := s.CreateOAMApplication("alice", req("nginx:1", 100, tc.q), "spec.components")
			if err != nil {
				t.Fatal(err)
			}
			oldID := a.Services[0]
			ips := 0
			run := func(key string) {
				ips++
				runWithIP(t, s, key, fmt.Sprintf("10.64.0.%d", ips))
			}
			run(wire.InstanceKey(oldID, 0))
			run(wire.InstanceKey(oldID, 1))
			if _, err := s.AdvanceWorkflows(); err != nil {
				t.Fatal(err)
			}
			up, _, err := s.UpdateOAMApplication("alice", req("nginx:2", 100, tc.q), "spec.components")
			if err != nil {
				t.Fatal(err)
			}
			newID := up.OAM.Components[0].ServiceID
			peak := 0
			state := func() string {
				sn := s.Snapshot()
				o, n := len(sn.Instances(oldID)), len(sn.Instances(newID))
				peak = max(peak, o+n)
				return fmt.Sprintf("old %d new %d", o, n)
			}
			for i, want := range tc.steps {
				if i > 0 {
					for _, in := range s.Snapshot().Instances(newID) {
						if in.Status != wire.StatusRunning {
							run(in.Key)
						}
					}
					if _, err := s.AdvanceWorkflows(); err != nil {
						t.Fatal(err)
					}
				}
				if got := state(); got != want {
					t.Fatalf("step %d: %s, want %s", i, got, want)
				}
			}
			if tc.q.Instances > 0 && peak > tc.q.Instances {
				t.Errorf("%d instances at once, quota %d", peak, tc.q.Instances)
			}
		})
	}

	// An end beyond the quota: refused, nothing changes.
	s := open(t, NewMemory())
	q := Quota{MemoryMB: 300}
	if _, _, err := s.CreateOAMApplication("alice", req("nginx:1", 100, q), "spec.components"); err != nil {
		t.Fatal(err)
	}
	before := s.Snapshot().Index()
	_, _, err := s.UpdateOAMApplication("alice", req("nginx:2", 200, q), "spec.components")
	var qe *QuotaError
	if !errors.As(err, &qe) || qe.Resource != "memory_mb" || qe.Limit != 300 {
		t.Fatalf("update to 2 × 200 MB within 300 MB: %v, want a QuotaError on memory_mb", err)
	}
	if after := s.Snapshot().Index(); after != before || workflow(s).Revision != 1 {
		t.Errorf("a refused update wrote: index %d → %d, revision %d", before, after, workflow(s).Revision)
	}
}
