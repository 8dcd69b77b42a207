package state

import "github.com/thicket-edge/thicket/root_orchestrator/internal/changefeed"

// feedSize is how many recent changes the feed keeps for streams that
// resume or fall behind.
const feedSize = 8192

// Feed is what each write changed: applications, services, instances,
// clusters and nodes (not address blocks, service IPs or tombstones, which
// nobody watches).
func (s *Store) Feed() *changefeed.Feed { return s.feed }

// feedKinds maps the kinds the feed carries to its names.
var feedKinds = map[Kind]string{
	KindApp:      changefeed.KindApplication,
	KindService:  changefeed.KindService,
	KindInstance: changefeed.KindInstance,
	KindCluster:  changefeed.KindCluster,
	KindNode:     changefeed.KindNode,
}

// touch notes a change for the feed. usage: only what is kept in memory
// changed (usage, last seen, log tails), not what is stored.
func (t *Txn) touch(kind Kind, id string, o any, usage bool) {
	name, ok := feedKinds[kind]
	if !ok {
		return
	}
	c := changefeed.Change{Kind: name, ID: id, Usage: usage}
	switch v := o.(type) {
	case *Application:
		c.Owner = v.Owner
	case *Service:
		c.Owner = v.Owner
	case *Instance:
		c.Owner = v.Owner
	}
	t.touched = append(t.touched, c)
}
