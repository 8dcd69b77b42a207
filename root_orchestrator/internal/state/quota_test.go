package state

import (
	"errors"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestQuota: usage counts the owner's instances (not completed one-shot
// ones) times their service's resources; AddInstanceWithin refuses what
// exceeds a bound with a QuotaError naming it and stores nothing;
// withinQuota lets a write that does not grow an excess pass.
func TestQuota(t *testing.T) {
	s := open(t, NewMemory())
	running(t, s)
	apps, _, err := s.CreateApplications("alice", oneApp("a", microservice("web", ""), microservice("db", "")))
	if err != nil {
		t.Fatal(err)
	}
	web, db := apps[0].Services[0], apps[0].Services[1] // 1 vcpu, 100 MB each
	if _, _, err := s.CreateApplications("bob", oneApp("b", microservice("x", ""))); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{web, web, db} {
		if _, _, err := s.AddInstance(id); err != nil {
			t.Fatal(err)
		}
	}
	if u := s.Snapshot().Usage("alice"); u != (Quota{Instances: 3, MilliCPU: 3000, MemoryMB: 300}) {
		t.Fatalf("usage %+v", u)
	}
	if u := s.Snapshot().Usage("bob"); u != (Quota{}) {
		t.Fatalf("bob's usage %+v", u)
	}
	// A completed one-shot instance takes nothing.
	if _, err := s.Write(func(tx *Txn) error {
		in := *first[Instance](tx.r(), tInstances, "id", wire.InstanceKey(db, 0))
		in.Status = wire.StatusCompleted
		tx.put(tInstances, KindInstance, in.Key, &in, false)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if u := s.Snapshot().Usage("alice"); u.Instances != 2 || u.MemoryMB != 200 {
		t.Fatalf("usage with a completed instance %+v", u)
	}

	for _, tc := range []struct {
		q        Quota
		resource string
	}{
		{Quota{Instances: 2}, "instances"},
		{Quota{MilliCPU: 2500}, "milli_cpu"},
		{Quota{Instances: 10, MemoryMB: 250}, "memory_mb"},
	} {
		before := s.Snapshot().Index()
		_, _, err := s.AddInstanceWithin(web, tc.q)
		var qe *QuotaError
		if !errors.As(err, &qe) || qe.Resource != tc.resource || qe.Owner != "alice" {
			t.Errorf("quota %+v: err %v, want a QuotaError on %s", tc.q, err, tc.resource)
		}
		if after := s.Snapshot().Index(); after != before {
			t.Errorf("quota %+v: a refused instance wrote (index %d → %d)", tc.q, before, after)
		}
	}
	if _, _, err := s.AddInstanceWithin(web, Quota{Instances: 3, MilliCPU: 3000, MemoryMB: 300}); err != nil {
		t.Errorf("an instance that fills the quota exactly: %v", err)
	}

	// Beyond a lowered quota already: removing passes, adding does not.
	low := Quota{Instances: 1}
	if _, err := s.Write(withinQuota("alice", low, func(tx *Txn) error {
		tx.removeInstance(first[Instance](tx.r(), tInstances, "id", wire.InstanceKey(web, 0)))
		return nil
	})); err != nil {
		t.Errorf("shrinking beyond a quota: %v", err)
	}
	if _, err := s.Write(withinQuota("alice", low, func(tx *Txn) error {
		tx.scale(first[Service](tx.r(), tServices, "id", db), 2)
		return nil
	})); err == nil {
		t.Errorf("growing beyond a quota passed")
	}
}
