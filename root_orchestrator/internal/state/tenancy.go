package state

import (
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
