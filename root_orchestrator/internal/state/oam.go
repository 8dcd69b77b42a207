package state

import (
	"fmt"
	"slices"

	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
)

// OAMSource is the OAM manifest an application was made from: the text as
// the user wrote it and what its components became.
type OAMSource struct {
	// Name is the manifest's metadata.name, unique per owner.
	Name string
	// Manifest is the YAML or JSON text as submitted.
	Manifest string
	// Components are the components in the manifest's order.
	Components []OAMComponent
}

// OAMComponent is a component of a manifest and the service it became.
type OAMComponent struct {
	Name      string
	ServiceID string
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

// CreateOAMApplication stores the application an OAM manifest compiled to
// (a validated SLA application), its services and replicas[i] instances of
// service i, for owner, or nothing at all. path is the JSON path of the
// components in the manifest, for errors.
//
// src names the manifest and its text; components are the components'
// names, in the order of the application's microservices.
func (s *Store) CreateOAMApplication(owner, name, manifest string, components []string, a *sla.Application, replicas []int, path string) (*Application, Ticket, error) {
	if len(replicas) != len(a.Microservices) || len(components) != len(a.Microservices) {
		return nil, Ticket{}, fmt.Errorf("oam: %d components, %d replicas for %d services", len(components), len(replicas), len(a.Microservices))
	}
	var out *Application
	tk, err := s.Write(func(t *Txn) error {
		if oamApp(t.r(), owner, name) != nil {
			return &ConflictError{Field: "metadata.name", Message: fmt.Sprintf("OAM application %s already exists", name)}
		}
		if t.appNamed(owner, a.ApplicationName, a.ApplicationNamespace) != nil {
			return &ConflictError{Field: "metadata.name",
				Message: fmt.Sprintf("application %s.%s already exists", a.ApplicationName, a.ApplicationNamespace)}
		}
		src := &OAMSource{Name: name, Manifest: manifest}
		app := &Application{ID: NewID(), Name: a.ApplicationName, Namespace: a.ApplicationNamespace,
			Description: a.ApplicationDesc, Owner: owner, OAM: src, CreatedAt: t.now, UpdatedAt: t.now}
		svcs, err := t.addServices(app, a.Microservices, path)
		if err != nil {
			return err
		}
		for i, created := range svcs {
			svc := *created
			app.Services = append(app.Services, svc.ID)
			src.Components = append(src.Components, OAMComponent{Name: components[i], ServiceID: svc.ID})
			for range replicas[i] {
				in := &Instance{
					Key: wire.InstanceKey(svc.ID, svc.NextInstance), ServiceID: svc.ID, Number: svc.NextInstance,
					Owner: owner, Status: wire.StatusRequested, CreatedAt: t.now, UpdatedAt: t.now,
				}
				svc.NextInstance++
				t.put(tInstances, KindInstance, in.Key, in, true)
			}
			t.put(tServices, KindService, svc.ID, &svc, true)
		}
		t.put(tApps, KindApp, app.ID, app, true)
		out = app
		return nil
	})
	return out, tk, err
}
