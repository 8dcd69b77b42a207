package state

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// NewID returns a new object id: 24 hex digits, as MongoDB ObjectIDs print.
func NewID() string { return bson.NewObjectID().Hex() }

func byCreation[T any](created func(*T) (int64, string)) func(a, b *T) int {
	return func(a, b *T) int {
		ta, ia := created(a)
		tb, ib := created(b)
		return cmp.Or(cmp.Compare(ta, tb), cmp.Compare(ia, ib))
	}
}

var (
	appOrder     = byCreation(func(a *Application) (int64, string) { return a.CreatedAt.UnixNano(), a.ID })
	serviceOrder = byCreation(func(s *Service) (int64, string) { return s.CreatedAt.UnixNano(), s.ID })
)

// --- Reading ---

// Apps returns owner's applications, or everyone's when owner is empty,
// oldest first.
func (sn *Snapshot) Apps(owner string) []*Application {
	var out []*Application
	if owner == "" {
		out = all[Application](sn.r(), tApps, "id")
	} else {
		out = all[Application](sn.r(), tApps, "owner", owner)
	}
	slices.SortFunc(out, appOrder)
	return out
}

// App returns one application, or nil.
func (sn *Snapshot) App(id string) *Application { return first[Application](sn.r(), tApps, "id", id) }

// Service returns one service, or nil.
func (sn *Snapshot) Service(id string) *Service {
	return first[Service](sn.r(), tServices, "id", id)
}

// ServicesOfApp returns an application's services in creation order.
func (sn *Snapshot) ServicesOfApp(appID string) []*Service {
	out := all[Service](sn.r(), tServices, "app", appID)
	slices.SortFunc(out, serviceOrder)
	return out
}

// Services returns owner's services, or everyone's when owner is empty, in
// creation order.
func (sn *Snapshot) Services(owner string) []*Service {
	var out []*Service
	if owner == "" {
		out = all[Service](sn.r(), tServices, "id")
	} else {
		out = all[Service](sn.r(), tServices, "owner", owner)
	}
	slices.SortFunc(out, serviceOrder)
	return out
}

// Instances returns a service's instances by number.
func (sn *Snapshot) Instances(serviceID string) []*Instance { return instancesOf(sn.r(), serviceID) }

func instancesOf(r reader, serviceID string) []*Instance {
	out := all[Instance](r, tInstances, "service", serviceID)
	slices.SortFunc(out, func(a, b *Instance) int { return cmp.Compare(a.Number, b.Number) })
	return out
}

// Instance returns one instance, or nil.
func (sn *Snapshot) Instance(key string) *Instance {
	return first[Instance](sn.r(), tInstances, "id", key)
}

// --- Writing ---

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func serviceFromSLA(m *sla.Microservice, app *Application, t *Txn) *Service {
	cons := make([]Constraint, 0, len(m.Constraints))
	for _, c := range m.Constraints {
		cons = append(cons, Constraint(c))
	}
	return &Service{
		ID: NewID(), Name: m.MicroserviceName, Namespace: m.MicroserviceNamespace,
		AppID: app.ID, AppName: app.Name, AppNamespace: app.Namespace, Owner: app.Owner,
		Spec: ServiceSpec{
			Virtualization: m.Virtualization, Code: m.Code, Arch: orEmpty(m.Arch), Cmd: orEmpty(m.Cmd),
			Environment: orEmpty(m.Environment), Port: m.Port, MemoryMB: m.Memory, VCPUs: m.VCPUs,
			VGPUs: m.VGPUs, VTPUs: m.VTPUs, BandwidthIn: m.BandwidthIn, BandwidthOut: m.BandwidthOut,
			Storage: m.Storage, AddedFiles: orEmpty(m.AddedFiles), Constraints: cons, OneShot: m.OneShot,
			Completions: m.Completions, Retries: m.Retries(), Disconnect: disconnectOf(m), Ports: portsOf(m.Port), Security: securityOf(m),
			Implementations: implementationsOf(m), NodeSelector: nilIfNone(m.NodeSelector),
			AllowFrom: m.AllowFrom,
		},
		Jobs: jobsOf(m), JobsVersion: jobsVersionOf(m), JobsLease: time.Duration(m.Lease()) * time.Second,
		CreatedAt: t.now, UpdatedAt: t.now,
	}
}

// reserveIP takes a service IP: the given one, or a free one at random from
// the service network when ip is empty.
func (t *Txn) reserveIP(ip, serviceID, kind, field string) (string, error) {
	free := func(a string) bool { return first[IPReservation](t.r(), tIPs, "id", a) == nil }
	if ip == "" {
		base := sla.ServiceNetwork.Addr().As4()
		for range 256 {
			a := base
			a[2], a[3] = byte(rand.IntN(256)), byte(1+rand.IntN(254)) // no .0 or .255 host parts
			if c := netip.AddrFrom4(a).String(); free(c) {
				ip = c
				break
			}
		}
		if ip == "" {
			return "", &ConflictError{Field: field, Message: "no free service IP left in " + sla.ServiceNetwork.String()}
		}
	} else if !free(ip) {
		return "", &ConflictError{Field: field, Message: fmt.Sprintf("service IP %s is already in use", ip)}
	}
	r := &IPReservation{IP: ip, ServiceID: serviceID, Kind: kind, CreatedAt: t.now}
	t.put(tIPs, KindIP, ip, r, true)
	return ip, nil
}

// addServices stores the services of one application, with their service
// IPs; path is the JSON path of the microservices, for errors.
func (t *Txn) addServices(app *Application, ms []sla.Microservice, path string) ([]*Service, error) {
	out := make([]*Service, 0, len(ms))
	for i := range ms {
		m := &ms[i]
		svc := serviceFromSLA(m, app, t)
		p := fmt.Sprintf("%s[%d].addresses", path, i)
		var want sla.Addresses
		if m.Addresses != nil {
			want = *m.Addresses
		}
		var err error
		if svc.RRIP, err = t.reserveIP(want.RRIP, svc.ID, "rr", p+".rr_ip"); err != nil {
			return nil, err
		}
		if want.ClosestIP != "" {
			if svc.ClosestIP, err = t.reserveIP(want.ClosestIP, svc.ID, "closest", p+".closest_ip"); err != nil {
				return nil, err
			}
		}
		t.put(tServices, KindService, svc.ID, svc, true)
		t.net = true // a new service IP enters the service table
		if svc.Spec.Completions > 0 {
			t.scale(svc, svc.Spec.Completions) // indices 0..N-1, created with it
		}
		out = append(out, svc)
	}
	return out, nil
}

func (t *Txn) appNamed(owner, name, ns string) *Application {
	for _, a := range all[Application](t.r(), tApps, "owner", owner) {
		if a.Name == name && a.Namespace == ns {
			return a
		}
	}
	return nil
}

// CreateApplications stores every application of a validated SLA with its
// services for owner, or nothing at all.
func (s *Store) CreateApplications(owner string, d *sla.SLA) ([]*Application, Ticket, error) {
	return s.CreateApplicationsWithin(owner, d, Quota{})
}

// CreateApplicationsWithin is CreateApplications unless the instances it
// creates (an indexed job's completions) would take owner beyond q: then
// it is a *QuotaError and nothing is stored.
func (s *Store) CreateApplicationsWithin(owner string, d *sla.SLA, q Quota) ([]*Application, Ticket, error) {
	var apps []*Application
	tk, err := s.Write(withinQuota(owner, q, func(t *Txn) error {
		for i, a := range d.Applications {
			if t.appNamed(owner, a.ApplicationName, a.ApplicationNamespace) != nil {
				return &ConflictError{Field: fmt.Sprintf("applications[%d].application_name", i),
					Message: fmt.Sprintf("application %s.%s already exists", a.ApplicationName, a.ApplicationNamespace)}
			}
			app := &Application{ID: NewID(), Name: a.ApplicationName, Namespace: a.ApplicationNamespace,
				Description: a.ApplicationDesc, Owner: owner, Isolation: isolationOf(&a), CreatedAt: t.now, UpdatedAt: t.now}
			svcs, err := t.addServices(app, a.Microservices, fmt.Sprintf("applications[%d].microservices", i))
			if err != nil {
				return err
			}
			app.Services = make([]string, len(svcs))
			for j, svc := range svcs {
				app.Services[j] = svc.ID
			}
			t.put(tApps, KindApp, app.ID, app, true)
			apps = append(apps, app)
		}
		return nil
	}))
	return apps, tk, err
}

// AddServices stores new services into an existing application, or none.
// path is the JSON path of the microservices in the request, for errors.
func (s *Store) AddServices(appID string, ms []sla.Microservice, path string) ([]*Service, Ticket, error) {
	return s.AddServicesWithin(appID, ms, path, Quota{})
}

// AddServicesWithin is AddServices unless the instances it creates (an
// indexed job's completions) would take the application's owner beyond q:
// then it is a *QuotaError and nothing is stored.
func (s *Store) AddServicesWithin(appID string, ms []sla.Microservice, path string, q Quota) ([]*Service, Ticket, error) {
	var out []*Service
	tk, err := s.Write(func(t *Txn) error {
		app := first[Application](t.r(), tApps, "id", appID)
		if app == nil {
			return fmt.Errorf("application %s: %w", appID, ErrNotFound)
		}
		return withinQuota(app.Owner, q, func(t *Txn) error {
			existing := all[Service](t.r(), tServices, "app", appID)
			for i, m := range ms {
				for _, e := range existing {
					if e.Name == m.MicroserviceName && e.Namespace == m.MicroserviceNamespace {
						return &ConflictError{Field: fmt.Sprintf("%s[%d].microservice_name", path, i),
							Message: fmt.Sprintf("service %s.%s already exists in this application", m.MicroserviceName, m.MicroserviceNamespace)}
					}
				}
			}
			svcs, err := t.addServices(app, ms, path)
			if err != nil {
				return err
			}
			a := *app
			a.Services = slices.Clone(app.Services)
			for _, svc := range svcs {
				a.Services = append(a.Services, svc.ID)
			}
			a.UpdatedAt = t.now
			t.put(tApps, KindApp, a.ID, &a, true)
			out = svcs
			return nil
		})(t)
	})
	return out, tk, err
}

// UpdateApplication changes an application's name, namespace or
// description (empty strings and a nil description keep their value) and
// carries a new name over to its services and instances.
func (s *Store) UpdateApplication(id, name, namespace string, desc *string) (*Application, Ticket, error) {
	var out *Application
	tk, err := s.Write(func(t *Txn) error {
		old := first[Application](t.r(), tApps, "id", id)
		if old == nil {
			return fmt.Errorf("application %s: %w", id, ErrNotFound)
		}
		a := *old
		a.Name, a.Namespace = cmp.Or(name, a.Name), cmp.Or(namespace, a.Namespace)
		if desc != nil {
			a.Description = *desc
		}
		if (a.Name != old.Name || a.Namespace != old.Namespace) && t.appNamed(a.Owner, a.Name, a.Namespace) != nil {
			return &ConflictError{Field: "application_name", Message: "an application with this name and namespace already exists"}
		}
		a.UpdatedAt = t.now
		t.put(tApps, KindApp, a.ID, &a, true)
		if a.Name != old.Name || a.Namespace != old.Namespace {
			for _, svc := range all[Service](t.r(), tServices, "app", id) {
				n := *svc
				n.AppName, n.AppNamespace = a.Name, a.Namespace
				t.put(tServices, KindService, n.ID, &n, true)
				// The name is part of every instance's spec: the clusters
				// get it again.
				for _, in := range instancesOf(t.r(), svc.ID) {
					c := *in
					c.DesiredIndex = t.index
					t.put(tInstances, KindInstance, c.Key, &c, false)
				}
			}
		}
		out = &a
		return nil
	})
	return out, tk, err
}

// DeleteApplication removes an application, its services and their
// instances and service IPs.
func (s *Store) DeleteApplication(id string) (Ticket, error) {
	return s.Write(func(t *Txn) error {
		app := first[Application](t.r(), tApps, "id", id)
		if app == nil {
			return fmt.Errorf("application %s: %w", id, ErrNotFound)
		}
		t.del(tApps, KindApp, id, app)
		for _, svc := range all[Service](t.r(), tServices, "app", id) {
			t.removeService(svc)
		}
		return nil
	})
}

// DeleteService removes a service from its application, then the service
// with its instances and service IPs.
func (s *Store) DeleteService(id string) (Ticket, error) {
	return s.Write(func(t *Txn) error {
		svc := first[Service](t.r(), tServices, "id", id)
		if svc == nil {
			return fmt.Errorf("service %s: %w", id, ErrNotFound)
		}
		if app := first[Application](t.r(), tApps, "id", svc.AppID); app != nil {
			a := *app
			a.Services = slices.DeleteFunc(slices.Clone(a.Services), func(s string) bool { return s == id })
			a.UpdatedAt = t.now
			t.put(tApps, KindApp, a.ID, &a, true)
		}
		t.removeService(svc)
		return nil
	})
}

func (t *Txn) removeService(svc *Service) {
	for _, in := range all[Instance](t.r(), tInstances, "service", svc.ID) {
		t.removeInstance(in)
	}
	for _, ip := range all[IPReservation](t.r(), tIPs, "service", svc.ID) {
		t.del(tIPs, KindIP, ip.IP, ip)
	}
	t.del(tServices, KindService, svc.ID, svc)
	t.net = true
}

// removeInstance deletes an instance; its cluster learns it by a tombstone.
func (t *Txn) removeInstance(in *Instance) {
	t.leave(in)
	if in.LostFrom != "" {
		t.leaveCluster(in.LostFrom, in.Key) // a copy may still run there
	}
	t.del(tInstances, KindInstance, in.Key, in)
	if in.Status == wire.StatusRunning && in.InstanceIP != "" {
		t.net = true
	}
}

// leave records that an instance leaves its cluster's desired set.
func (t *Txn) leave(in *Instance) {
	if in.ClusterID != "" {
		t.leaveCluster(in.ClusterID, in.Key)
	}
}

// leaveCluster records that instance key leaves a cluster's desired set.
func (t *Txn) leaveCluster(clusterID, key string) {
	ts := &tombstone{ID: clusterID + "/" + key, ClusterID: clusterID, Key: key, Index: t.index, At: t.now}
	t.put(tTombs, "", ts.ID, ts, false)
}

// AddInstance records a new requested instance of a service. Instance
// numbers count up and are never reused within a service.
func (s *Store) AddInstance(serviceID string) (*Instance, Ticket, error) {
	return s.AddInstanceWithin(serviceID, Quota{})
}

// AddInstanceWithin is AddInstance unless the new instance would take the
// service's owner beyond q: then it is a *QuotaError and nothing changes.
func (s *Store) AddInstanceWithin(serviceID string, q Quota) (*Instance, Ticket, error) {
	var out *Instance
	tk, err := s.Write(func(t *Txn) error {
		old := first[Service](t.r(), tServices, "id", serviceID)
		if old == nil {
			return fmt.Errorf("service %s: %w", serviceID, ErrNotFound)
		}
		if n := old.Spec.Completions; n > 0 {
			return &ConflictError{Field: "completions", Message: fmt.Sprintf(
				"service %s is an indexed job: its %d instances (indices 0..%d) were created with it, and none is added", old.Name, n, n-1)}
		}
		if err := t.checkQuota(old, 1, q); err != nil {
			return err
		}
		svc := *old
		in := &Instance{
			Key: wire.InstanceKey(svc.ID, svc.NextInstance), ServiceID: svc.ID, Number: svc.NextInstance,
			Owner: svc.Owner, Status: wire.StatusRequested, CreatedAt: t.now, UpdatedAt: t.now,
		}
		svc.NextInstance++
		// The counter is stored with the next deletion: until then the
		// stored instances carry it (see load).
		t.put(tServices, KindService, svc.ID, &svc, false)
		t.put(tInstances, KindInstance, in.Key, in, true)
		out = in
		return nil
	})
	return out, tk, err
}

// DeleteInstance removes instance n of a service.
func (s *Store) DeleteInstance(serviceID string, n int) (Ticket, error) {
	return s.Write(func(t *Txn) error {
		in := first[Instance](t.r(), tInstances, "id", wire.InstanceKey(serviceID, n))
		if in == nil {
			return fmt.Errorf("instance %d of service %s: %w", n, serviceID, ErrNotFound)
		}
		t.removeInstance(in)
		if svc := first[Service](t.r(), tServices, "id", serviceID); svc != nil {
			// Stored with the deletion: the counter must not fall back to
			// this instance's number at the next start.
			c := *svc
			c.UpdatedAt = t.now
			t.put(tServices, KindService, c.ID, &c, true)
		}
		return nil
	})
}

// implementationsOf lists an overloaded microservice's implementations as
// the wire carries them (nil: it has one).
func implementationsOf(m *sla.Microservice) []wire.Implementation {
	impls := m.Implementations()
	if impls == nil {
		return nil
	}
	out := make([]wire.Implementation, len(impls))
	for i, im := range impls {
		out[i] = wire.Implementation{Name: im.Name, Virtualization: im.Virtualization, Code: im.Code,
			Arch: nilIfEmpty(im.Arch), Cmd: nilIfEmpty(im.Cmd),
			Resources: wire.Resources{MilliCPU: int64(im.VCPUs) * 1000, MemoryMB: int64(im.Memory), VGPUs: int64(m.VGPUs)}}
	}
	return out
}

// nilIfEmpty copies a list, nil when empty: what the store gives back.
func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// nilIfNone copies a map, nil when empty: what the store gives back.
func nilIfNone(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
