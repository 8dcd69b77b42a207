package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/thicket-edge/thicket/contract/api"
	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// NewID returns a new document id: 24 hex digits, as MongoDB ObjectIDs print.
func NewID() string { return bson.NewObjectID().Hex() }

// ipReservation marks a service IP as taken; the _id is the address, so the
// database itself refuses a second reservation of the same address.
type ipReservation struct {
	IP        string    `bson:"_id"`
	ServiceID string    `bson:"service_id"`
	Kind      string    `bson:"kind"` // "rr" or "closest"
	CreatedAt time.Time `bson:"created_at"`
}

// tx collects what a multi-document write has done so far, to undo it if a
// later step fails before the commit point.
type tx struct {
	s        *Store
	ips      []string
	services []string
	apps     []string
}

func (t *tx) rollback() {
	// A fresh context: the request's may be what failed.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(t.apps) > 0 {
		if _, err := t.s.apps.DeleteMany(ctx, bson.M{"_id": bson.M{"$in": t.apps}}); err != nil {
			t.s.log.Error("rollback applications; the collector will remove them", "err", err)
		}
	}
	if len(t.services) > 0 {
		if _, err := t.s.services.DeleteMany(ctx, bson.M{"_id": bson.M{"$in": t.services}}); err != nil {
			t.s.log.Error("rollback services; the collector will remove them", "err", err)
		}
	}
	if len(t.ips) > 0 {
		if _, err := t.s.ips.DeleteMany(ctx, bson.M{"_id": bson.M{"$in": t.ips}}); err != nil {
			t.s.log.Error("rollback service IPs; the collector will remove them", "err", err)
		}
	}
}

// reserveIP takes a service IP for a service: the given one, or a free one
// chosen at random from the service network when ip is empty.
func (t *tx) reserveIP(ctx context.Context, ip, serviceID, kind, field string) (string, error) {
	r := ipReservation{ServiceID: serviceID, Kind: kind, CreatedAt: t.s.now()}
	if ip != "" {
		r.IP = ip
		if _, err := t.s.ips.InsertOne(ctx, r); err != nil {
			if mongo.IsDuplicateKeyError(err) {
				return "", &ConflictError{Field: field, Message: fmt.Sprintf("service IP %s is already in use", ip)}
			}
			return "", fmt.Errorf("reserve service IP: %w", err)
		}
		t.ips = append(t.ips, ip)
		return ip, nil
	}
	base := sla.ServiceNetwork.Addr().As4()
	for range 64 {
		a := base
		a[2], a[3] = byte(rand.IntN(256)), byte(1+rand.IntN(254)) // no .0 or .255 host parts
		r.IP = netip.AddrFrom4(a).String()
		_, err := t.s.ips.InsertOne(ctx, r)
		if err == nil {
			t.ips = append(t.ips, r.IP)
			return r.IP, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return "", fmt.Errorf("allocate service IP: %w", err)
		}
	}
	return "", &ConflictError{Field: field, Message: "no free service IP left in " + sla.ServiceNetwork.String()}
}

// addServices reserves the IPs of and inserts the services of one
// application; path is the JSON path of the application's microservices.
func (t *tx) addServices(ctx context.Context, app *api.Application, ms []sla.Microservice, path string) ([]api.Service, error) {
	now := t.s.now()
	out := make([]api.Service, 0, len(ms))
	docs := make([]any, 0, len(ms))
	for i := range ms {
		m := &ms[i]
		svc := newService(m, app, now)
		p := fmt.Sprintf("%s[%d].addresses", path, i)
		var want sla.Addresses
		if m.Addresses != nil {
			want = *m.Addresses
		}
		var err error
		if svc.RRIP, err = t.reserveIP(ctx, want.RRIP, svc.MicroserviceID, "rr", p+".rr_ip"); err != nil {
			return nil, err
		}
		if want.ClosestIP != "" {
			if svc.ClosestIP, err = t.reserveIP(ctx, want.ClosestIP, svc.MicroserviceID, "closest", p+".closest_ip"); err != nil {
				return nil, err
			}
		}
		out = append(out, svc)
		docs = append(docs, svc)
	}
	for _, svc := range out {
		t.services = append(t.services, svc.MicroserviceID)
	}
	if _, err := t.s.services.InsertMany(ctx, docs); err != nil {
		return nil, fmt.Errorf("insert services: %w", err)
	}
	return out, nil
}

func newService(m *sla.Microservice, app *api.Application, now time.Time) api.Service {
	cons := make([]api.Constraint, 0, len(m.Constraints))
	for _, c := range m.Constraints {
		cons = append(cons, api.Constraint(c))
	}
	return api.Service{
		MicroserviceID:        NewID(),
		MicroserviceName:      m.MicroserviceName,
		MicroserviceNamespace: m.MicroserviceNamespace,
		ApplicationID:         app.ApplicationID,
		AppName:               app.ApplicationName,
		AppNamespace:          app.ApplicationNamespace,
		UserID:                app.UserID,
		Virtualization:        m.Virtualization,
		Code:                  m.Code,
		Arch:                  orEmpty(m.Arch),
		Cmd:                   orEmpty(m.Cmd),
		Environment:           orEmpty(m.Environment),
		Port:                  m.Port,
		Memory:                m.Memory,
		VCPUs:                 m.VCPUs,
		VGPUs:                 m.VGPUs,
		VTPUs:                 m.VTPUs,
		BandwidthIn:           m.BandwidthIn,
		BandwidthOut:          m.BandwidthOut,
		Storage:               m.Storage,
		AddedFiles:            orEmpty(m.AddedFiles),
		Constraints:           cons,
		OneShot:               m.OneShot,
		InstanceList:          []api.Instance{},
		CreatedAt:             now,
		UpdatedAt:             now,
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CreateApplications stores every application of a validated SLA with its
// services for owner, or nothing at all.
func (s *Store) CreateApplications(ctx context.Context, owner string, d *sla.SLA) (_ []api.Application, err error) {
	t := &tx{s: s}
	defer func() {
		if err != nil {
			t.rollback()
		}
	}()
	now := s.now()
	apps := make([]api.Application, len(d.Applications))
	for i, a := range d.Applications {
		app := &apps[i]
		*app = api.Application{
			ApplicationID:        NewID(),
			ApplicationName:      a.ApplicationName,
			ApplicationNamespace: a.ApplicationNamespace,
			ApplicationDesc:      a.ApplicationDesc,
			UserID:               owner,
			CreatedAt:            now,
			UpdatedAt:            now,
		}
		n, err := s.apps.CountDocuments(ctx, bson.M{"userId": owner, "application_name": a.ApplicationName, "application_namespace": a.ApplicationNamespace})
		if err != nil {
			return nil, fmt.Errorf("check application name: %w", err)
		}
		if n > 0 {
			return nil, &ConflictError{Field: fmt.Sprintf("applications[%d].application_name", i),
				Message: fmt.Sprintf("application %s.%s already exists", a.ApplicationName, a.ApplicationNamespace)}
		}
		svcs, err := t.addServices(ctx, app, a.Microservices, fmt.Sprintf("applications[%d].microservices", i))
		if err != nil {
			return nil, err
		}
		app.Microservices = make([]string, len(svcs))
		for j, svc := range svcs {
			app.Microservices[j] = svc.MicroserviceID
		}
	}
	// Commit point: the application documents.
	docs := make([]any, len(apps))
	for i := range apps {
		docs[i] = apps[i]
		t.apps = append(t.apps, apps[i].ApplicationID)
	}
	if _, err := s.apps.InsertMany(ctx, docs); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return nil, &ConflictError{Field: "applications", Message: "an application with the same name and namespace was created meanwhile"}
		}
		return nil, fmt.Errorf("insert applications: %w", err)
	}
	return apps, nil
}

// byCreation sorts documents oldest first, ties by id.
var byCreation = bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}

// ownedBy selects owner's documents, or everyone's when owner is empty.
func ownedBy(owner string) bson.M {
	if owner == "" {
		return bson.M{}
	}
	return bson.M{"userId": owner}
}

// ListApplications returns owner's applications, or everyone's when owner
// is empty, oldest first.
func (s *Store) ListApplications(ctx context.Context, owner string) ([]api.Application, error) {
	cur, err := s.apps.Find(ctx, ownedBy(owner), options.Find().SetSort(byCreation))
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	out := []api.Application{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	return out, nil
}

// GetApplication returns one application.
func (s *Store) GetApplication(ctx context.Context, id string) (*api.Application, error) {
	var a api.Application
	if err := s.apps.FindOne(ctx, bson.M{"_id": id}).Decode(&a); err != nil {
		return nil, fmt.Errorf("get application %s: %w", id, notFound(err))
	}
	return &a, nil
}

// UpdateApplication changes an application's name, namespace or description
// and carries a new name over to its services.
func (s *Store) UpdateApplication(ctx context.Context, id string, u api.ApplicationUpdate) (*api.Application, error) {
	set := bson.M{"updated_at": s.now()}
	if u.ApplicationName != "" {
		set["application_name"] = u.ApplicationName
	}
	if u.ApplicationNamespace != "" {
		set["application_namespace"] = u.ApplicationNamespace
	}
	if u.ApplicationDesc != nil {
		set["application_desc"] = *u.ApplicationDesc
	}
	var a api.Application
	err := s.apps.FindOneAndUpdate(ctx, bson.M{"_id": id}, bson.M{"$set": set},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&a)
	if err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return nil, &ConflictError{Field: "application_name", Message: "an application with this name and namespace already exists"}
		}
		return nil, fmt.Errorf("update application %s: %w", id, notFound(err))
	}
	if _, err := s.services.UpdateMany(ctx, bson.M{"applicationID": id},
		bson.M{"$set": bson.M{"app_name": a.ApplicationName, "app_ns": a.ApplicationNamespace}}); err != nil {
		return nil, fmt.Errorf("update services of application %s: %w", id, err)
	}
	return &a, nil
}

// DeleteApplication removes an application, its services and their
// instances and service IPs.
func (s *Store) DeleteApplication(ctx context.Context, id string) error {
	r, err := s.apps.DeleteOne(ctx, bson.M{"_id": id})
	if err != nil {
		return fmt.Errorf("delete application %s: %w", id, err)
	}
	if r.DeletedCount == 0 {
		return fmt.Errorf("delete application %s: %w", id, ErrNotFound)
	}
	return s.removeServices(ctx, bson.M{"applicationID": id})
}

// removeServices deletes services no application refers to any more, and
// their IP reservations.
func (s *Store) removeServices(ctx context.Context, filter bson.M) error {
	ids, err := s.serviceIDs(ctx, filter)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.services.DeleteMany(ctx, bson.M{"_id": bson.M{"$in": ids}}); err != nil {
		return fmt.Errorf("delete services: %w", err)
	}
	if _, err := s.ips.DeleteMany(ctx, bson.M{"service_id": bson.M{"$in": ids}}); err != nil {
		return fmt.Errorf("release service IPs: %w", err)
	}
	return nil
}

func (s *Store) serviceIDs(ctx context.Context, filter bson.M) ([]string, error) {
	cur, err := s.services.Find(ctx, filter, options.Find().SetProjection(bson.M{"_id": 1}))
	if err != nil {
		return nil, fmt.Errorf("find services: %w", err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("find services: %w", err)
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids, nil
}

// AddServices stores new services into an existing application, or none.
// path is the JSON path of the microservices in the request, for errors.
func (s *Store) AddServices(ctx context.Context, appID string, ms []sla.Microservice, path string) (_ []api.Service, err error) {
	app, err := s.GetApplication(ctx, appID)
	if err != nil {
		return nil, err
	}
	existing, err := s.ListServices(ctx, appID)
	if err != nil {
		return nil, err
	}
	for i, m := range ms {
		for _, e := range existing {
			if e.MicroserviceName == m.MicroserviceName && e.MicroserviceNamespace == m.MicroserviceNamespace {
				return nil, &ConflictError{Field: fmt.Sprintf("%s[%d].microservice_name", path, i),
					Message: fmt.Sprintf("service %s.%s already exists in this application", m.MicroserviceName, m.MicroserviceNamespace)}
			}
		}
	}
	t := &tx{s: s}
	defer func() {
		if err != nil {
			t.rollback()
		}
	}()
	svcs, err := t.addServices(ctx, app, ms, path)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(svcs))
	for i, svc := range svcs {
		ids[i] = svc.MicroserviceID
	}
	// Commit point: the application lists the new services.
	r, err := s.apps.UpdateOne(ctx, bson.M{"_id": appID}, bson.M{
		"$push": bson.M{"microservices": bson.M{"$each": ids}},
		"$set":  bson.M{"updated_at": s.now()},
	})
	if err != nil {
		return nil, fmt.Errorf("attach services to application %s: %w", appID, err)
	}
	if r.MatchedCount == 0 {
		return nil, fmt.Errorf("attach services to application %s: %w", appID, ErrNotFound)
	}
	return svcs, nil
}

// GetService returns one service with its instances.
func (s *Store) GetService(ctx context.Context, id string) (*api.Service, error) {
	var svc api.Service
	if err := s.services.FindOne(ctx, bson.M{"_id": id}).Decode(&svc); err != nil {
		return nil, fmt.Errorf("get service %s: %w", id, notFound(err))
	}
	return &svc, nil
}

// ListServices returns the services of an application, in creation order.
func (s *Store) ListServices(ctx context.Context, appID string) ([]api.Service, error) {
	return s.findServices(ctx, bson.M{"applicationID": appID}, options.Find().SetSort(byCreation))
}

// ListUserServices returns the services of owner's applications, or
// everyone's when owner is empty, in creation order.
func (s *Store) ListUserServices(ctx context.Context, owner string) ([]api.Service, error) {
	return s.findServices(ctx, ownedBy(owner), options.Find().SetSort(byCreation))
}

// DeleteService removes a service from its application, then the service
// with its instances and service IPs.
func (s *Store) DeleteService(ctx context.Context, id string) error {
	svc, err := s.GetService(ctx, id)
	if err != nil {
		return err
	}
	if _, err := s.apps.UpdateOne(ctx, bson.M{"_id": svc.ApplicationID}, bson.M{
		"$pull": bson.M{"microservices": id},
		"$set":  bson.M{"updated_at": s.now()},
	}); err != nil {
		return fmt.Errorf("detach service %s: %w", id, err)
	}
	return s.removeServices(ctx, bson.M{"_id": id})
}

// errRetry asks mutateService to try again.
var errRetry = errors.New("concurrent change")

// errUnchanged, returned by a change function, means there is nothing to
// write.
var errUnchanged = errors.New("unchanged")

// mutateService applies change to a service and writes the result if the
// service did not change meanwhile, retrying otherwise. Only the instance
// list, the instance counter and updated_at are written. This is portable
// read-modify-write: FerretDB cannot $pull by condition.
func (s *Store) mutateService(ctx context.Context, id string, change func(*api.Service) error) (*api.Service, error) {
	for range 20 {
		svc, err := s.GetService(ctx, id)
		if err != nil {
			return nil, err
		}
		rev := svc.Rev
		if err := change(svc); errors.Is(err, errUnchanged) {
			return svc, nil
		} else if err != nil {
			return nil, err
		}
		svc.UpdatedAt = s.now()
		r, err := s.services.UpdateOne(ctx, bson.M{"_id": id, "rev": rev}, bson.M{
			"$set": bson.M{"instance_list": svc.InstanceList, "next_instance": svc.NextInstance, "updated_at": svc.UpdatedAt},
			"$inc": bson.M{"rev": 1},
		})
		if err != nil {
			return nil, fmt.Errorf("update service %s: %w", id, err)
		}
		if r.MatchedCount == 1 {
			svc.Rev = rev + 1
			return svc, nil
		}
	}
	return nil, fmt.Errorf("update service %s: %w", id, errRetry)
}

// AddInstance records a new requested instance of a service and returns it.
// Instance numbers count up and are never reused within a service.
func (s *Store) AddInstance(ctx context.Context, serviceID string) (*api.Instance, error) {
	var inst api.Instance
	_, err := s.mutateService(ctx, serviceID, func(svc *api.Service) error {
		now := s.now()
		inst = api.Instance{
			InstanceNumber: svc.NextInstance,
			Status:         wire.StatusRequested,
			CPUPercent:     "0",
			MemoryPercent:  "0",
			Disk:           "0",
			CreatedAt:      now,
			UpdatedAt:      now,
		}
		svc.NextInstance++
		svc.InstanceList = append(svc.InstanceList, inst)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &inst, nil
}

// DeleteInstance removes instance n of a service.
func (s *Store) DeleteInstance(ctx context.Context, serviceID string, n int) error {
	_, err := s.mutateService(ctx, serviceID, func(svc *api.Service) error {
		for i, in := range svc.InstanceList {
			if in.InstanceNumber == n {
				svc.InstanceList = append(svc.InstanceList[:i], svc.InstanceList[i+1:]...)
				return nil
			}
		}
		return fmt.Errorf("instance %d of service %s: %w", n, serviceID, ErrNotFound)
	})
	return err
}

// CollectOrphans removes what a write interrupted before its commit point
// left behind: services no application lists and service IPs no service
// holds, if older than grace (younger ones may belong to a write still in
// progress on another replica).
func (s *Store) CollectOrphans(ctx context.Context, grace time.Duration) (int, error) {
	cutoff := s.now().Add(-grace)
	cur, err := s.apps.Find(ctx, bson.M{}, options.Find().SetProjection(bson.M{"microservices": 1}))
	if err != nil {
		return 0, fmt.Errorf("collect: %w", err)
	}
	var apps []api.Application
	if err := cur.All(ctx, &apps); err != nil {
		return 0, fmt.Errorf("collect: %w", err)
	}
	listed := map[string]bool{}
	for _, a := range apps {
		for _, id := range a.Microservices {
			listed[id] = true
		}
	}
	old := bson.M{"created_at": bson.M{"$lt": cutoff}}
	ids, err := s.serviceIDs(ctx, old)
	if err != nil {
		return 0, fmt.Errorf("collect: %w", err)
	}
	var orphans []string
	for _, id := range ids {
		if !listed[id] {
			orphans = append(orphans, id)
		}
	}
	if len(orphans) > 0 {
		if err := s.removeServices(ctx, bson.M{"_id": bson.M{"$in": orphans}}); err != nil {
			return 0, fmt.Errorf("collect: %w", err)
		}
	}
	// Reservations whose service is gone.
	cur, err = s.ips.Find(ctx, old)
	if err != nil {
		return 0, fmt.Errorf("collect: %w", err)
	}
	var res []ipReservation
	if err := cur.All(ctx, &res); err != nil {
		return 0, fmt.Errorf("collect: %w", err)
	}
	n := len(orphans)
	for _, r := range res {
		if _, err := s.GetService(ctx, r.ServiceID); errors.Is(err, ErrNotFound) {
			if _, err := s.ips.DeleteOne(ctx, bson.M{"_id": r.IP, "service_id": r.ServiceID}); err != nil {
				return n, fmt.Errorf("collect: %w", err)
			}
			n++
		}
	}
	return n, nil
}
