package state

import (
	"fmt"
	"slices"

	"github.com/thicket-edge/thicket/contract/sla"
)

// peerIndex resolves services' allow_from entries (sla.Peer) against the
// services that exist: a user entry stays a user (every instance of that
// tenant, now and later), an application or service entry becomes the ids
// of the services it names now (the table is rebuilt when services come).
type peerIndex struct {
	byOwner map[string][]*Service
}

func newPeerIndex(svcs []*Service) peerIndex {
	ix := peerIndex{byOwner: make(map[string][]*Service)}
	for _, s := range svcs {
		ix.byOwner[s.Owner] = append(ix.byOwner[s.Owner], s)
	}
	return ix
}

// resolve returns the users and the service ids that entries allow, sorted
// and without repeats; nil when none. Entries that do not parse (none pass
// the SLA's validation) are skipped.
func (ix peerIndex) resolve(entries []string) (users, ids []string) {
	for _, e := range entries {
		p, err := sla.ParsePeer(e)
		if err != nil {
			continue
		}
		if p.App == "" {
			users = append(users, p.User)
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
