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

// Usage is what a user's instances ask for now, in a Quota's terms, with
// what the user's running OAM workflows will still add (owedOf).
func (sn *Snapshot) Usage(owner string) Quota { return usageOf(sn.r(), owner) }

func usageOf(r reader, owner string) Quota {
	var u Quota
	for _, in := range all[Instance](r, tInstances, "owner", owner) {
		if in.Status == wire.StatusCompleted {
			continue
		}
		if svc := first[Service](r, tServices, "id", in.ServiceID); svc != nil {
			u = u.plus(specQuota(specOf(svc, in)))
		} else {
			u.Instances++
		}
	}
	for _, a := range all[Application](r, tApps, "owner", owner) {
		u = u.plus(owedOf(r, a.OAM))
	}
	return u
}

// times is what n instances of svc ask for.
func times(svc *Service, n int) Quota {
	return Quota{Instances: n, MilliCPU: int64(n) * int64(svc.Spec.VCPUs) * 1000, MemoryMB: int64(n) * int64(svc.Spec.MemoryMB)}
}

// specQuota is what one instance running sp asks for.
func specQuota(sp *ServiceSpec) Quota {
	return Quota{Instances: 1, MilliCPU: int64(sp.VCPUs) * 1000, MemoryMB: int64(sp.MemoryMB)}
}

func (q Quota) plus(o Quota) Quota {
	return Quota{q.Instances + o.Instances, q.MilliCPU + o.MilliCPU, q.MemoryMB + o.MemoryMB}
}

func (q Quota) minus(o Quota) Quota {
	return Quota{q.Instances - o.Instances, q.MilliCPU - o.MilliCPU, q.MemoryMB - o.MemoryMB}
}

// atLeast0 clamps each field at 0.
func (q Quota) atLeast0() Quota {
	return Quota{max(q.Instances, 0), max(q.MilliCPU, 0), max(q.MemoryMB, 0)}
}

// counted is what a service's stored instances ask for (completed ones
// aside).
func counted(r reader, serviceID string) Quota {
	svc := first[Service](r, tServices, "id", serviceID)
	if svc == nil {
		return Quota{}
	}
	n := 0
	for _, in := range instancesOf(r, serviceID) {
		if in.Status != wire.StatusCompleted {
			n++
		}
	}
	return times(svc, n)
}

// owedOf is what a running OAM workflow will still add to its owner's
// stored instances: the replicas of the components whose step has not
// started yet, and for a component being replaced the excess of its end
// (its replicas of the new service, the old one gone) over what both
// services' instances ask for now. Nil, failed and finished workflows owe
// nothing.
func owedOf(r reader, src *OAMSource) Quota {
	var o Quota
	if src == nil || src.Phase != OAMRunning {
		return o
	}
	started := map[string]bool{}
	for _, st := range src.Steps[:min(src.Step+1, len(src.Steps))] {
		for _, name := range st.Components {
			started[name] = true
		}
	}
	for _, c := range src.Components {
		svc := first[Service](r, tServices, "id", c.ServiceID)
		switch {
		case svc == nil:
		case c.Replacing != "":
			now := counted(r, c.ServiceID).plus(counted(r, c.Replacing))
			o = o.plus(times(svc, c.Replicas).minus(now).atLeast0())
		case !started[c.Name]:
			o = o.plus(times(svc, c.Replicas).minus(counted(r, c.ServiceID)).atLeast0())
		}
	}
	return o
}

// resourceNames are the names of a Quota's fields in the API, in the
// order of values.
var resourceNames = [3]string{"instances", "milli_cpu", "memory_mb"}

// values are q's fields in the order of resourceNames.
func (q Quota) values() [3]int64 { return [3]int64{int64(q.Instances), q.MilliCPU, q.MemoryMB} }

// exceeds reports whether u passes a bound of q.
func (q Quota) exceeds(u Quota) bool {
	lim, used := q.values(), u.values()
	for i := range lim {
		if lim[i] > 0 && used[i] > lim[i] {
			return true
		}
	}
	return false
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
	return overQuota(svc, usageOf(t.r(), svc.Owner), n, q)
}

// overQuota refuses n more instances of svc's spec on top of used u when
// that exceeds q.
func overQuota(svc *Service, u Quota, n int, q Quota) error {
	lim, used, more := q.values(), u.values(), times(svc, n).values()
	for i := range lim {
		if lim[i] > 0 && used[i]+more[i] > lim[i] {
			return &QuotaError{Owner: svc.Owner, Resource: resourceNames[i], Limit: lim[i], Used: used[i], Asked: more[i]}
		}
	}
	return nil
}

// withinQuota wraps a write on owner's behalf: it fails with a *QuotaError,
// and so changes nothing, when the write leaves the owner's usage beyond q
// in a resource the write made grow (a write that shrinks or keeps an
// excess, after the quota was lowered, passes).
func withinQuota(owner string, q Quota, fn func(*Txn) error) func(*Txn) error {
	if q == (Quota{}) {
		return fn // no bound: nothing to count
	}
	return func(t *Txn) error {
		before := usageOf(t.r(), owner)
		if err := fn(t); err != nil {
			return err
		}
		lim, b, a := q.values(), before.values(), usageOf(t.r(), owner).values()
		for i := range lim {
			if lim[i] > 0 && a[i] > lim[i] && a[i] > b[i] {
				return &QuotaError{Owner: owner, Resource: resourceNames[i], Limit: lim[i], Used: b[i], Asked: a[i] - b[i]}
			}
		}
		return nil
	}
}
