package state

import (
	"fmt"
	"slices"

	"github.com/thicket-edge/thicket/contract/sla"
)

// isolationOf is how an SLA application's isolation is stored: "" for
// its owner's (the default) or sla.IsolationApplication.
func isolationOf(a *sla.Application) string {
	if a.Isolation == sla.IsolationApplication {
		return a.Isolation
	}
	return ""
}

// tenantOf is the unit of isolation (wire.ServiceRoute.Tenant) of an
// application's services: its owner, or "owner/application id" for an
// application isolated on its own. User names have no "/", so an
// application's key never is a user's.
func tenantOf(a *Application) string {
	if a.Isolation == sla.IsolationApplication {
		return a.Owner + "/" + a.ID
	}
	return a.Owner
}

// peerIndex resolves services' allow_from entries (sla.Peer) against the
// services that exist: a user entry stays a user (every instance of that
// tenant, now and later, with the user's applications isolated on their
// own), an application or service entry becomes the ids of the services
// it names now (the table is rebuilt when services come).
type peerIndex struct {
	byOwner map[string][]*Service
	// tenants maps an application's id to its tenant; isolated lists each
	// user's applications isolated on their own, by tenant.
	tenants  map[string]string
	isolated map[string][]string
}

func newPeerIndex(svcs []*Service, apps []*Application) peerIndex {
	ix := peerIndex{byOwner: make(map[string][]*Service), tenants: make(map[string]string), isolated: make(map[string][]string)}
	for _, s := range svcs {
		ix.byOwner[s.Owner] = append(ix.byOwner[s.Owner], s)
	}
	for _, a := range apps {
		t := tenantOf(a)
		ix.tenants[a.ID] = t
		if t != a.Owner {
			ix.isolated[a.Owner] = append(ix.isolated[a.Owner], t)
		}
	}
	return ix
}

// tenant is the unit of isolation of a service: its application's, or its
// owner for a service whose application is not known.
func (ix peerIndex) tenant(svc *Service) string {
	if t, ok := ix.tenants[svc.AppID]; ok {
		return t
	}
	return svc.Owner
}

// resolve returns the tenants and the service ids that entries allow,
// sorted and without repeats; nil when none. Entries that do not parse
// (none pass the SLA's validation) are skipped.
func (ix peerIndex) resolve(entries []string) (users, ids []string) {
	for _, e := range entries {
		p, err := sla.ParsePeer(e)
		if err != nil {
			continue
		}
		if p.App == "" {
			users = append(users, p.User)
			users = append(users, ix.isolated[p.User]...)
			continue
		}
		for _, s := range ix.byOwner[p.User] {
			if s.AppName == p.App && (p.Service == "" || s.Name == p.Service) {
				ids = append(ids, s.ID)
			}
		}
	}
	slices.Sort(users)
	slices.Sort(ids)
	return slices.Compact(users), slices.Compact(ids)
}

// SetAllowFrom replaces a service's allow_from with a validated list (nil
// or empty: none). Only the service table changes, as at a create: the
// clusters get the new rules with it, and no instance restarts.
func (s *Store) SetAllowFrom(serviceID string, entries []string) (*Service, Ticket, error) {
	var out *Service
	tk, err := s.Write(func(t *Txn) error {
		old := first[Service](t.r(), tServices, "id", serviceID)
		if old == nil {
			return fmt.Errorf("service %s: %w", serviceID, ErrNotFound)
		}
		out = t.setAllowFrom(old, entries)
		return nil
	})
	return out, tk, err
}

// setAllowFrom stores a copy of svc with allow_from entries.
func (t *Txn) setAllowFrom(old *Service, entries []string) *Service {
	svc := *old
	svc.Spec.AllowFrom = nil
	if len(entries) > 0 {
		svc.Spec.AllowFrom = slices.Clone(entries)
	}
	svc.UpdatedAt = t.now
	t.put(tServices, KindService, svc.ID, &svc, true)
	t.net = true
	return &svc
}
