package state

import (
	"fmt"

	"github.com/thicket-edge/thicket/contract/wire"
)

// Quota bounds what one user's services may ask for, counted over the
// instances that are wanted (every stored instance but the one-shot ones
// that completed) times their service's resources. A zero field is no
// bound.
type Quota struct {
	Instances int
	MilliCPU  int64
	MemoryMB  int64
}

// Usage is what a user's instances ask for now, in a Quota's terms.
func (sn *Snapshot) Usage(owner string) Quota { return usageOf(sn.r(), owner) }

func usageOf(r reader, owner string) Quota {
	var u Quota
	for _, in := range all[Instance](r, tInstances, "owner", owner) {
		if in.Status == wire.StatusCompleted {
			continue
		}
		u.Instances++
		if svc := first[Service](r, tServices, "id", in.ServiceID); svc != nil {
			sp := specOf(svc, in)
			u.MilliCPU += int64(sp.VCPUs) * 1000
			u.MemoryMB += int64(sp.MemoryMB)
		}
	}
	return u
}

// QuotaError: a request would take a user beyond a quota. Resource is
// "instances", "milli_cpu" or "memory_mb".
type QuotaError struct {
	Owner    string
	Resource string
	Limit    int64
	Used     int64
	Asked    int64
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("quota exceeded: user %s may have %s %d, has %d, this asks %d more",
		e.Owner, e.Resource, e.Limit, e.Used, e.Asked)
}

// checkQuota refuses adding n instances of svc to its owner's when that
// exceeds q.
func (t *Txn) checkQuota(svc *Service, n int, q Quota) error {
	if q == (Quota{}) {
		return nil
	}
	return exceeds(svc, usageOf(t.r(), svc.Owner), n, q)
}

// exceeds refuses n more instances of svc's spec on top of used when that
// exceeds q.
func exceeds(svc *Service, u Quota, n int, q Quota) error {
	for _, c := range []struct {
		name              string
		limit, used, more int64
	}{
		{"instances", int64(q.Instances), int64(u.Instances), int64(n)},
		{"milli_cpu", q.MilliCPU, u.MilliCPU, int64(n) * int64(svc.Spec.VCPUs) * 1000},
		{"memory_mb", q.MemoryMB, u.MemoryMB, int64(n) * int64(svc.Spec.MemoryMB)},
	} {
		if c.limit > 0 && c.used+c.more > c.limit {
			return &QuotaError{Owner: svc.Owner, Resource: c.name, Limit: c.limit, Used: c.used, Asked: c.more}
		}
	}
	return nil
}

// withinQuota wraps a write on owner's behalf: it fails with a *QuotaError,
// and so changes nothing, when the write leaves the owner's usage beyond q
// in a resource the write made grow (a write that shrinks or keeps an
// excess, after the quota was lowered, passes).
func withinQuota(owner string, q Quota, fn func(*Txn) error) func(*Txn) error {
	return func(t *Txn) error {
		before := usageOf(t.r(), owner)
		if err := fn(t); err != nil {
			return err
		}
		if q == (Quota{}) {
			return nil
		}
		after := usageOf(t.r(), owner)
		for _, c := range []struct {
			name                 string
			limit, before, after int64
		}{
			{"instances", int64(q.Instances), int64(before.Instances), int64(after.Instances)},
			{"milli_cpu", q.MilliCPU, before.MilliCPU, after.MilliCPU},
			{"memory_mb", q.MemoryMB, before.MemoryMB, after.MemoryMB},
		} {
			if c.limit > 0 && c.after > c.limit && c.after > c.before {
				return &QuotaError{Owner: owner, Resource: c.name, Limit: c.limit, Used: c.before, Asked: c.after - c.before}
			}
		}
		return nil
	}
}
