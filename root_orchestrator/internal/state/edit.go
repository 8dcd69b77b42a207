package state

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
)

// Rollout is an edit of a service being rolled out: its instances that
// still run an earlier spec (Instance.Spec set) are replaced by instances
// of the service's spec one at a time, as an OAM update replaces a
// component (rollStep).
type Rollout struct {
	// Replicas is how many instances the service has when it is done.
	Replicas int
	// Message says why the rollout stopped (a new instance FAILED; the
	// old ones keep running); "" while it goes on.
	Message string
}

// EditRequest is a stored service's new microservice document.
type EditRequest struct {
	ServiceID string
	Service   *sla.Microservice
	// Path is the JSON path of the microservice in the request, for
	// errors.
	Path string
	// Quota is the owner's (zero: none): an edit whose instances would ask
	// for more than it allows, once rolled out, is refused (a *QuotaError).
	Quota Quota
}

// UpdateService applies an edited microservice document to a stored
// service, keeping its id, service IPs and instances' numbering. When its
// spec (what an instance runs with) is the same, nothing restarts. When
// it differs, the service's instances keep their old spec (Instance.Spec)
// and are replaced by instances of the new one, one at a time: a new
// instance first, and an old one stops when every new one runs
// (AdvanceWorkflows moves it on). Name, namespace and service IPs cannot
// change, nor can services of OAM applications (their manifest is edited)
// or indexed jobs: those are a *ConflictError, and nothing changes.
func (s *Store) UpdateService(req EditRequest) (*Service, Ticket, error) {
	var out *Service
	m, p := req.Service, req.Path
	tk, err := s.Write(func(t *Txn) error {
		old := first[Service](t.r(), tServices, "id", req.ServiceID)
		if old == nil {
			return fmt.Errorf("service %s: %w", req.ServiceID, ErrNotFound)
		}
		app := first[Application](t.r(), tApps, "id", old.AppID)
		if app == nil {
			return fmt.Errorf("application %s: %w", old.AppID, ErrNotFound)
		}
		if app.OAM != nil {
			return &ConflictError{Field: p, Message: fmt.Sprintf("service %s belongs to OAM application %s: edit its manifest (PUT /api/oam/applications/%s)", old.Name, app.OAM.Name, app.OAM.Name)}
		}
		if m.MicroserviceName != old.Name || m.MicroserviceNamespace != old.Namespace {
			return &ConflictError{Field: p + ".microservice_name", Message: fmt.Sprintf("the service is %s.%s: its name and namespace cannot change", old.Name, old.Namespace)}
		}
		if a := m.Addresses; a != nil {
			if a.RRIP != "" && a.RRIP != old.RRIP {
				return &ConflictError{Field: p + ".addresses.rr_ip", Message: fmt.Sprintf("the service's round robin IP is %s and cannot change", old.RRIP)}
			}
			if a.ClosestIP != old.ClosestIP && a.ClosestIP != "" {
				return &ConflictError{Field: p + ".addresses.closest_ip", Message: "the service's closest IP cannot change"}
			}
		}
		if old.Spec.Completions > 0 || m.Completions > 0 {
			return &ConflictError{Field: p + ".completions", Message: "indexed jobs cannot be edited: delete the service and add it again"}
		}
		want := serviceFromSLA(m, app, t)
		svc := *old
		svc.Spec, svc.UpdatedAt = want.Spec, t.now
		svc.JobsLease = want.JobsLease
		ins := instancesOf(t.r(), svc.ID)
		// allow_from is the overlay's (the service table), not what an
		// instance runs: a change of it alone restarts nothing.
		if !slices.Equal(old.Spec.AllowFrom, svc.Spec.AllowFrom) {
			t.net = true
		}
		runs := old.Spec
		runs.AllowFrom = svc.Spec.AllowFrom
		if reflect.DeepEqual(runs, svc.Spec) {
			t.put(tServices, KindService, svc.ID, &svc, true)
			out = &svc
			return nil
		}
		replicas := len(ins)
		if old.Rollout != nil {
			replicas = old.Rollout.Replicas
		}
		if err := t.checkEditQuota(old, &svc, replicas, req.Quota); err != nil {
			return err
		}
		// Every instance of an earlier spec keeps it until it is replaced.
		for _, in := range ins {
			if in.Spec == nil {
				cp := *in
				spec := old.Spec
				cp.Spec = &spec
				t.put(tInstances, KindInstance, cp.Key, &cp, true)
			}
		}
		svc.Rollout = &Rollout{Replicas: replicas}
		t.put(tServices, KindService, svc.ID, &svc, true)
		t.rollService(svc.ID)
		out = first[Service](t.r(), tServices, "id", svc.ID)
		return nil
	})
	return out, tk, err
}

// checkEditQuota refuses an edit of old into svc whose n instances of the
// new spec, with the owner's other services' instances, exceed q.
func (t *Txn) checkEditQuota(old, svc *Service, n int, q Quota) error {
	if q == (Quota{}) {
		return nil
	}
	u := usageOf(t.r(), svc.Owner)
	for _, in := range instancesOf(t.r(), svc.ID) {
		if in.Status == wire.StatusCompleted {
			continue
		}
		u = u.minus(specQuota(specOf(old, in)))
	}
	return overQuota(svc, u, n, q)
}

// specOf is the spec instance in runs with: its own while a rollout
// replaces it, else its service's.
func specOf(svc *Service, in *Instance) *ServiceSpec {
	if in.Spec != nil {
		return in.Spec
	}
	return &svc.Spec
}

// rollService moves a service's rollout on by at most one step; it
// reports whether anything changed.
func (t *Txn) rollService(id string) bool {
	old := first[Service](t.r(), tServices, "id", id)
	if old == nil || old.Rollout == nil || old.Rollout.Message != "" {
		return false
	}
	var news, olds []*Instance
	for _, in := range instancesOf(t.r(), id) {
		if in.Spec != nil {
			olds = append(olds, in)
		} else {
			news = append(news, in)
		}
	}
	svc := *old
	step := rollStep(news, olds, old.Rollout.Replicas, false)
	switch step.action {
	case rollWait:
		return false
	case rollFailed:
		r := *old.Rollout
		r.Message = fmt.Sprintf("new instance %d FAILED%s; the old instances keep running", step.failed.Number, detail(step.failed.Detail))
		svc.Rollout = &r
	case rollRemoveOld:
		t.removeInstance(step.old)
		return true
	case rollAddNew:
		t.scale(old, len(news)+len(olds)+1)
		return true
	case rollDone:
		svc.Rollout = nil
	}
	svc.UpdatedAt = t.now
	t.put(tServices, KindService, svc.ID, &svc, true)
	return true
}

// rollouts lists the services whose rollout goes on.
func rollouts(r reader) []string {
	var out []string
	for _, svc := range all[Service](r, tServices, "id") {
		if svc.Rollout != nil && svc.Rollout.Message == "" {
			out = append(out, svc.ID)
		}
	}
	slices.Sort(out)
	return out
}

// Steps of a replacement.
const (
	rollWait      = iota // the newest new instance is on its way
	rollFailed           // a new instance FAILED: stop here
	rollRemoveOld        // every new instance runs: one old one goes
	rollAddNew           // one new instance more
	rollDone             // no old instance left and enough new ones run
)

type rollAction struct {
	action int
	old    *Instance // rollRemoveOld: the one to remove
	failed *Instance // rollFailed: the new one that failed
}

// rollStep decides the next step of replacing the olds by news until
// replicas news run, one instance at a time: while a new instance is on
// its way nothing happens; then an old one goes for each new one running
// (the highest-numbered first), and a new one is added while there are
// fewer than replicas. So a new instance runs before an old one stops,
// and never more than one instance beyond replicas exists.
func rollStep(news, olds []*Instance, replicas int, noSurge bool) rollAction {
	running := 0
	for _, in := range news {
		switch in.Status {
		case wire.StatusFailed:
			return rollAction{action: rollFailed, failed: in}
		case wire.StatusRunning, wire.StatusCompleted:
			running++
		}
	}
	if running < len(news) {
		return rollAction{action: rollWait}
	}
	if len(olds) > 0 && (len(olds)+running > replicas || noSurge && len(olds)+running >= replicas) {
		olds = slices.Clone(olds)
		slices.SortFunc(olds, func(a, b *Instance) int { return a.Number - b.Number })
		return rollAction{action: rollRemoveOld, old: olds[len(olds)-1]}
	}
	if running < replicas {
		return rollAction{action: rollAddNew}
	}
	return rollAction{action: rollDone}
}
