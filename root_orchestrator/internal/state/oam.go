package state

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
)

// OAMSource is the OAM manifest an application was made from: the text as
// the user wrote it, what its components became, and where its workflow
// is.
type OAMSource struct {
	// Name is the manifest's metadata.name, unique per owner.
	Name string
	// Manifest is the YAML or JSON text as submitted.
	Manifest string
	// Components are the components in the manifest's order.
	Components []OAMComponent
	// Steps are the workflow's steps in order; Step is the index of the
	// one running (len(Steps) once all are done).
	Steps []OAMStep
	Step  int
	// Phase is OAMRunning, OAMSucceeded or OAMFailed; Message says why a
	// workflow failed.
	Phase   string
	Message string
	// Revision numbers the manifests applied, from 1; Revisions are the
	// last maxRevisions of them, oldest first, the current one last.
	Revision  int
	Revisions []OAMRevision
}

// OAMRevision is one manifest applied to an OAM application.
type OAMRevision struct {
	Number    int
	Manifest  string
	CreatedAt time.Time
}

// maxRevisions is how many revisions an OAM application keeps.
const maxRevisions = 10

// Phases of an OAM application's workflow.
const (
	OAMRunning   = "running"
	OAMSucceeded = "succeeded"
	OAMFailed    = "failed"
)

// OAMComponent is a component of a manifest, the service it became and
// the instances it asks for.
type OAMComponent struct {
	Name      string
	ServiceID string
	Replicas  int
	// Replacing is the service ServiceID replaces, one instance at a
	// time, after an update changed the component ("" when none). Until
	// the last old instance is gone, the old service's IPs reach the new
	// instances too; TakeRR and TakeClosest say that ServiceID takes the
	// old service's round robin and closest IP then.
	Replacing   string
	TakeRR      bool
	TakeClosest bool
	// NoSurge: the replacement removes an old instance before it adds
	// each new one (stop-then-start), because one instance more than the
	// replicas would take the owner beyond the quota (README: Quotas).
	NoSurge bool
}

// OAMStep is a workflow step: the components it deploys, by name.
type OAMStep struct {
	Name       string
	Components []string
}

// OAMRequest is a compiled OAM manifest to store: the application (a
// validated SLA application), its components' names and replicas in the
// order of its microservices, and the workflow's steps.
type OAMRequest struct {
	Name       string
	Manifest   string
	App        *sla.Application
	Components []string
	Replicas   []int
	Steps      []OAMStep
	// Quota is the owner's (zero: none): a request that would take the
	// owner's instances beyond it is refused (a *QuotaError).
	Quota Quota
}

// OAMApp returns owner's application made from the OAM manifest called
// name, or nil.
func (sn *Snapshot) OAMApp(owner, name string) *Application {
	return oamApp(sn.r(), owner, name)
}

func oamApp(r reader, owner, name string) *Application {
	for _, a := range all[Application](r, tApps, "owner", owner) {
		if a.OAM != nil && a.OAM.Name == name {
			return a
		}
	}
	return nil
}

// OAMApps lists the applications made from OAM manifests, of owner or of
// everyone (""), oldest first.
func (sn *Snapshot) OAMApps(owner string) []*Application {
	return slices.DeleteFunc(sn.Apps(owner), func(a *Application) bool { return a.OAM == nil })
}

// CreateOAMApplication stores the application an OAM manifest compiled
// to, with its services, for owner, and starts the instances of the
// workflow's first step (the others start as the steps before them
// finish: AdvanceWorkflows); or it stores nothing at all. path is the
// JSON path of the components in the manifest, for errors.
func (s *Store) CreateOAMApplication(owner string, req OAMRequest, path string) (*Application, Ticket, error) {
	a := req.App
	if len(req.Replicas) != len(a.Microservices) || len(req.Components) != len(a.Microservices) || len(req.Steps) == 0 {
		return nil, Ticket{}, fmt.Errorf("oam: %d components, %d replicas, %d steps for %d services",
			len(req.Components), len(req.Replicas), len(req.Steps), len(a.Microservices))
	}
	var out *Application
	tk, err := s.Write(withinQuota(owner, req.Quota, func(t *Txn) error {
		if oamApp(t.r(), owner, req.Name) != nil {
			return &ConflictError{Field: "metadata.name", Message: fmt.Sprintf("OAM application %s already exists", req.Name)}
		}
		if t.appNamed(owner, a.ApplicationName, a.ApplicationNamespace) != nil {
			return &ConflictError{Field: "metadata.name",
				Message: fmt.Sprintf("application %s.%s already exists", a.ApplicationName, a.ApplicationNamespace)}
		}
		src := &OAMSource{Name: req.Name, Manifest: req.Manifest, Phase: OAMRunning, Revision: 1,
			Revisions: []OAMRevision{{Number: 1, Manifest: req.Manifest, CreatedAt: t.now}}}
		for _, st := range req.Steps {
			src.Steps = append(src.Steps, OAMStep{Name: st.Name, Components: slices.Clone(st.Components)})
		}
		app := &Application{ID: NewID(), Name: a.ApplicationName, Namespace: a.ApplicationNamespace,
			Description: a.ApplicationDesc, Owner: owner, Isolation: isolationOf(a), OAM: src, CreatedAt: t.now, UpdatedAt: t.now}
		svcs, err := t.addServices(app, a.Microservices, path)
		if err != nil {
			return err
		}
		for i, svc := range svcs {
			app.Services = append(app.Services, svc.ID)
			src.Components = append(src.Components, OAMComponent{Name: req.Components[i], ServiceID: svc.ID, Replicas: req.Replicas[i]})
		}
		t.startStep(src)
		t.advance(src)
		t.put(tApps, KindApp, app.ID, app, true)
		out = app
		return nil
	}))
	return out, tk, err
}

// startStep adds the instances of the components of the current step.
func (t *Txn) startStep(src *OAMSource) {
	for _, name := range src.Steps[src.Step].Components {
		i := slices.IndexFunc(src.Components, func(c OAMComponent) bool { return c.Name == name })
		if i < 0 {
			continue
		}
		if svc := first[Service](t.r(), tServices, "id", src.Components[i].ServiceID); svc != nil {
			t.scale(svc, src.Components[i].Replicas)
		}
	}
}

// Outcomes of a workflow step.
const (
	stepPending = iota
	stepDone
	stepFailed
)

// stepOutcome judges the current step of a running workflow: done when
// every component of it has as many instances RUNNING (or COMPLETED) as it
// asks for, failed when one of them FAILED or its service is gone.
func stepOutcome(r reader, src *OAMSource) (int, string) {
	step := src.Steps[src.Step]
	outcome := stepDone
	for _, name := range step.Components {
		i := slices.IndexFunc(src.Components, func(c OAMComponent) bool { return c.Name == name })
		if i < 0 {
			continue
		}
		c := src.Components[i]
		if first[Service](r, tServices, "id", c.ServiceID) == nil {
			return stepFailed, fmt.Sprintf("step %s: the service of component %s was deleted", step.Name, name)
		}
		if c.Replacing != "" {
			outcome = stepPending
		}
		ready := 0
		for _, in := range instancesOf(r, c.ServiceID) {
			switch in.Status {
			case wire.StatusFailed:
				msg := fmt.Sprintf("step %s: component %s: instance %d FAILED", step.Name, name, in.Number)
				if in.Detail != "" {
					msg += ": " + in.Detail
				}
				return stepFailed, msg
			case wire.StatusRunning, wire.StatusCompleted:
				ready++
			}
		}
		if ready < c.Replicas {
			outcome = stepPending
		}
	}
	return outcome, ""
}

// advance moves a running workflow on as far as its steps are done,
// starting each next step's instances; it reports whether anything
// changed. src is the application's copy to change.
func (t *Txn) advance(src *OAMSource) bool {
	changed := false
	for i := range src.Components {
		if src.Phase == OAMRunning && src.Components[i].Replacing != "" {
			c, msg := t.roll(&src.Components[i])
			changed = changed || c
			if msg != "" {
				src.Phase, src.Message = OAMFailed, fmt.Sprintf("step %s: %s", src.Steps[src.Step].Name, msg)
				return true
			}
		}
	}
	for src.Phase == OAMRunning {
		outcome, msg := stepOutcome(t.r(), src)
		switch outcome {
		case stepPending:
			return changed
		case stepFailed:
			src.Phase, src.Message = OAMFailed, msg
			return true
		}
		changed = true
		src.Step++
		if src.Step == len(src.Steps) {
			src.Phase = OAMSucceeded
			return true
		}
		t.startStep(src)
	}
	return changed
}

// AdvanceWorkflows moves every running OAM workflow on whose current step
// is done (its next step's instances start) or failed (the workflow stops
// there, naming the step), and every edited service's rollout by a step
// (UpdateService). It returns how many workflows and rollouts changed.
func (s *Store) AdvanceWorkflows() (int, error) {
	sn := s.Snapshot()
	var due []string
	for _, a := range sn.OAMApps("") {
		if a.OAM.Phase == OAMRunning {
			rolling := slices.ContainsFunc(a.OAM.Components, func(c OAMComponent) bool { return c.Replacing != "" })
			if o, _ := stepOutcome(sn.r(), a.OAM); rolling || o != stepPending {
				due = append(due, a.ID)
			}
		}
	}
	svcs := rollouts(sn.r())
	if len(due) == 0 && len(svcs) == 0 {
		return 0, nil
	}
	n := 0
	_, err := s.Write(func(t *Txn) error {
		for _, id := range svcs {
			if t.rollService(id) {
				n++
			}
		}
		for _, id := range due {
			old := first[Application](t.r(), tApps, "id", id)
			if old == nil || old.OAM == nil {
				continue
			}
			a := *old
			src := *old.OAM
			src.Components = slices.Clone(old.OAM.Components)
			a.OAM = &src
			if t.advance(&src) {
				a.Services = liveServices(t.r(), a.Services)
				a.UpdatedAt = t.now
				t.put(tApps, KindApp, a.ID, &a, true)
				n++
			}
		}
		return nil
	})
	return n, err
}

// UpdateOAMApplication applies a changed manifest to owner's OAM
// application of that name, as a new revision, all at once: components
// added are created with their instances, components removed are deleted,
// a component whose only change is its replicas is scaled (new instances,
// or the highest-numbered removed), and a component whose service spec
// changed is replaced: its service is deleted and created again with the
// new spec, keeping its service IPs unless the manifest names others. The
// workflow then has one step, "update", with every component, which is
// done when they all run (an update during a workflow ends it: what was
// still to come starts now). req.Name must be the application's name; path
// is the JSON path of the components, for errors.
func (s *Store) UpdateOAMApplication(owner string, req OAMRequest, path string) (*Application, Ticket, error) {
	a := req.App
	if len(req.Replicas) != len(a.Microservices) || len(req.Components) != len(a.Microservices) {
		return nil, Ticket{}, fmt.Errorf("oam: %d components, %d replicas for %d services", len(req.Components), len(req.Replicas), len(a.Microservices))
	}
	var out *Application
	tk, err := s.Write(withinQuota(owner, req.Quota, func(t *Txn) error {
		old := oamApp(t.r(), owner, req.Name)
		if old == nil {
			return fmt.Errorf("OAM application %s: %w", req.Name, ErrNotFound)
		}
		if a.ApplicationName != old.Name || a.ApplicationNamespace != old.Namespace {
			return &ConflictError{Field: "metadata.namespace", Message: fmt.Sprintf("the application is %s.%s: its name and namespace cannot change", old.Name, old.Namespace)}
		}
		app := *old
		if iso := isolationOf(a); iso != app.Isolation {
			app.Isolation = iso // the service table's tenants change
			t.net = true
		}
		src := *old.OAM
		app.OAM, app.Services, app.UpdatedAt = &src, nil, t.now
		src.Manifest, src.Components, src.Message = req.Manifest, nil, ""
		src.Steps = []OAMStep{{Name: "update", Components: slices.Clone(req.Components)}}
		src.Step, src.Phase = 0, OAMRunning
		src.Revision++
		src.Revisions = append(slices.Clone(old.OAM.Revisions), OAMRevision{Number: src.Revision, Manifest: req.Manifest, CreatedAt: t.now})
		if n := len(src.Revisions); n > maxRevisions {
			src.Revisions = src.Revisions[n-maxRevisions:]
		}
		// Components removed go first: their service IPs are free for the
		// others.
		for _, c := range old.OAM.Components {
			if svc := first[Service](t.r(), tServices, "id", c.ServiceID); svc != nil && !slices.Contains(req.Components, c.Name) {
				t.removeService(svc)
			}
		}
		// A replacement still going from an earlier update ends: the old
		// service goes now, the new one takes its IPs.
		for _, c := range old.OAM.Components {
			if c.Replacing != "" {
				t.handOver(&c)
			}
		}
		for i := range a.Microservices {
			m := a.Microservices[i]
			name := req.Components[i]
			var prev *Service
			if j := slices.IndexFunc(old.OAM.Components, func(c OAMComponent) bool { return c.Name == name }); j >= 0 {
				prev = first[Service](t.r(), tServices, "id", old.OAM.Components[j].ServiceID)
			}
			if prev != nil && sameService(prev, &m, &app, t) {
				if !slices.Equal(prev.Spec.AllowFrom, m.AllowFrom) {
					// Only the service table changes: no instance restarts.
					prev = t.setAllowFrom(prev, m.AllowFrom)
				}
				t.scale(prev, req.Replicas[i])
				app.Services = append(app.Services, prev.ID)
				src.Components = append(src.Components, OAMComponent{Name: name, ServiceID: prev.ID, Replicas: req.Replicas[i]})
				continue
			}
			comp := OAMComponent{Name: name, Replicas: req.Replicas[i]}
			if prev != nil {
				// Replaced one instance at a time: the new service takes
				// the old one's service IPs that the manifest keeps (or
				// does not choose) when the old one is gone, and has a
				// temporary round robin IP until then.
				var addr sla.Addresses
				if m.Addresses != nil {
					addr = *m.Addresses
				}
				comp.Replacing = prev.ID
				if addr.RRIP == "" || addr.RRIP == prev.RRIP {
					comp.TakeRR, addr.RRIP = true, ""
				}
				if prev.ClosestIP != "" && (m.Addresses == nil || addr.ClosestIP == prev.ClosestIP) {
					comp.TakeClosest, addr.ClosestIP = true, ""
				}
				m.Addresses = &addr
				app.Services = append(app.Services, prev.ID)
			}
			svcs, err := t.addServices(&app, []sla.Microservice{m}, path)
			if ce := (*ConflictError)(nil); errors.As(err, &ce) {
				ce.Field = strings.Replace(ce.Field, path+"[0]", fmt.Sprintf("%s[%d]", path, i), 1)
			}
			if err != nil {
				return err
			}
			svc := svcs[0]
			if prev == nil {
				t.scale(svc, req.Replicas[i])
			}
			app.Services = append(app.Services, svc.ID)
			comp.ServiceID = svc.ID
			src.Components = append(src.Components, comp)
		}
		noSurge(t, owner, req.Quota, old.OAM, &src)
		t.advance(&src)
		app.Services = liveServices(t.r(), app.Services)
		t.put(tApps, KindApp, app.ID, &app, true)
		out = &app
		return nil
	}))
	return out, tk, err
}

// noSurge makes the replacements of an update (src, replacing old) roll
// without surge when the instance each would add first takes owner beyond
// q, over what the owner's instances ask for with the update's end.
func noSurge(t *Txn, owner string, q Quota, old, src *OAMSource) {
	if q == (Quota{}) {
		return
	}
	u := usageOf(t.r(), owner).minus(owedOf(t.r(), old)).plus(owedOf(t.r(), src))
	for _, c := range src.Components {
		if svc := first[Service](t.r(), tServices, "id", c.ServiceID); svc != nil && c.Replacing != "" {
			u = u.plus(times(svc, 1))
		}
	}
	if !q.exceeds(u) {
		return
	}
	for i := range src.Components {
		if src.Components[i].Replacing != "" {
			src.Components[i].NoSurge = true
		}
	}
}

// sameService reports whether a stored service already is what a
// microservice of a new revision asks for (its replicas and allow_from
// aside: both change in place).
func sameService(svc *Service, m *sla.Microservice, app *Application, t *Txn) bool {
	want := serviceFromSLA(m, app, t)
	want.Spec.AllowFrom = svc.Spec.AllowFrom
	if want.Name != svc.Name || want.Namespace != svc.Namespace || !reflect.DeepEqual(want.Spec, svc.Spec) {
		return false
	}
	var rr, closest string
	if a := m.Addresses; a != nil {
		rr, closest = a.RRIP, a.ClosestIP
	}
	return (rr == "" || rr == svc.RRIP) && closest == svc.ClosestIP
}

// scale adds instances to a service, or removes its highest-numbered ones,
// until it has n.
func (t *Txn) scale(svc *Service, n int) {
	ins := instancesOf(t.r(), svc.ID)
	slices.SortFunc(ins, func(a, b *Instance) int { return a.Number - b.Number })
	for len(ins) > n {
		t.removeInstance(ins[len(ins)-1])
		ins = ins[:len(ins)-1]
	}
	if len(ins) == n {
		return
	}
	c := *first[Service](t.r(), tServices, "id", svc.ID)
	for range n - len(ins) {
		in := &Instance{
			Key: wire.InstanceKey(c.ID, c.NextInstance), ServiceID: c.ID, Number: c.NextInstance,
			Owner: c.Owner, Status: wire.StatusRequested, CreatedAt: t.now, UpdatedAt: t.now,
		}
		c.NextInstance++
		t.put(tInstances, KindInstance, in.Key, in, true)
	}
	c.UpdatedAt = t.now
	t.put(tServices, KindService, c.ID, &c, true)
}

// roll moves a component's replacement on by at most one instance: while
// every new instance runs, one old instance goes for each new one running
// and a new one is added until there are enough (without surge, an old one
// goes before each new one comes); when none of the old is left, the old
// service is deleted and the new one takes its service IPs.
// It reports whether anything changed, and why the replacement stopped
// (a new instance FAILED; the old instances keep serving).
func (t *Txn) roll(c *OAMComponent) (bool, string) {
	svc := first[Service](t.r(), tServices, "id", c.ServiceID)
	old := first[Service](t.r(), tServices, "id", c.Replacing)
	if svc == nil {
		return false, fmt.Sprintf("the service of component %s was deleted", c.Name)
	}
	news := instancesOf(t.r(), svc.ID)
	var olds []*Instance
	if old != nil {
		olds = instancesOf(t.r(), old.ID)
	}
	step := rollStep(news, olds, c.Replicas, c.NoSurge)
	switch step.action {
	case rollWait:
		return false, ""
	case rollFailed:
		return false, fmt.Sprintf("component %s: new instance %d FAILED%s; the old instances keep running", c.Name, step.failed.Number, detail(step.failed.Detail))
	case rollRemoveOld:
		t.removeInstance(step.old)
		return true, ""
	case rollAddNew:
		t.scale(svc, len(news)+1)
		return true, ""
	}
	t.handOver(c)
	return true, ""
}

// handOver ends a component's replacement: the old service goes (with
// what instances it has left) and the new one takes its service IPs.
func (t *Txn) handOver(c *OAMComponent) {
	svc := first[Service](t.r(), tServices, "id", c.ServiceID)
	old := first[Service](t.r(), tServices, "id", c.Replacing)
	if svc != nil && old != nil {
		n := *svc
		t.removeService(old)
		if c.TakeRR {
			for _, ip := range all[IPReservation](t.r(), tIPs, "service", n.ID) {
				if ip.Kind == "rr" {
					t.del(tIPs, KindIP, ip.IP, ip)
				}
			}
			n.RRIP, _ = t.reserveIP(old.RRIP, n.ID, "rr", "")
		}
		if c.TakeClosest && old.ClosestIP != "" {
			n.ClosestIP, _ = t.reserveIP(old.ClosestIP, n.ID, "closest", "")
		}
		n.UpdatedAt = t.now
		t.put(tServices, KindService, n.ID, &n, true)
		// The service IPs are part of every instance's spec: the
		// clusters get it again.
		for _, in := range instancesOf(t.r(), n.ID) {
			cp := *in
			cp.DesiredIndex = t.index
			t.put(tInstances, KindInstance, cp.Key, &cp, false)
		}
		t.net = true
	} else if old != nil {
		t.removeService(old)
	}
	c.Replacing, c.TakeRR, c.TakeClosest, c.NoSurge = "", false, false, false
}

// replacements maps each service being replaced by an OAM update to the
// service replacing it.
func replacements(r reader) map[string]string {
	out := map[string]string{}
	for _, a := range all[Application](r, tApps, "id") {
		if a.OAM == nil {
			continue
		}
		for _, c := range a.OAM.Components {
			if c.Replacing != "" {
				out[c.Replacing] = c.ServiceID
			}
		}
	}
	return out
}

// liveServices drops the ids of services that no longer exist.
func liveServices(r reader, ids []string) []string {
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return first[Service](r, tServices, "id", id) == nil })
}

func detail(d string) string {
	if d == "" {
		return ""
	}
	return ": " + d
}
