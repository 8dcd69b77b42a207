// Package changefeed fans the root's changes out to live streams (the
// dashboard's, the CLI's): one bounded ring of recent changes, written once
// per commit, that every stream reads after a single wake-up, each applying
// its own filter and coalescing bursts into at most one batch per interval.
package changefeed

import (
	"crypto/rand"
	"encoding/hex"
	"sync"

	"github.com/thicket-edge/thicket/api"
)

// Kinds of changes a stream carries: the kinds the stream sends
// (api.Change*), spelled once.
const (
	KindApplication = api.ChangeApplication
	KindService     = api.ChangeService
	KindInstance    = api.ChangeInstance
	KindCluster     = api.ChangeCluster
	KindNode        = api.ChangeNode
	// KindEvent: new events of the instance ID (GET …/instance/{n}/events).
	KindEvent = api.ChangeEvent
	// KindUser and KindJoinToken: accounts and cluster join tokens, which
	// only admins may see (they live in the store, not the state: the API
	// publishes their changes).
	KindUser      = api.ChangeUser
	KindJoinToken = api.ChangeJoinToken
)

// Change says that an object changed (or was deleted).
type Change struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// Usage is set when only figures that move all the time changed (usage,
	// last seen, log tails): a reader may refresh less eagerly for those.
	Usage bool `json:"usage,omitempty"`
	// Owner of an application, service, instance or event: who may see it.
	Owner string `json:"-"`
}

type entry struct {
	seq   uint64
	index uint64
	c     Change
}

// Feed is the ring of recent changes. Every Publish is one sequence number.
type Feed struct {
	epoch string

	mu    sync.Mutex
	seq   uint64
	index uint64 // state index of the last publish
	ring  []entry
	head  int    // next slot to write
	n     int    // entries held
	floor uint64 // highest sequence number dropped from the ring
	wake  chan struct{}
}

// New makes a feed that keeps the last size changes (at least 16).
func New(size int) *Feed {
	size = max(size, 16)
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &Feed{epoch: hex.EncodeToString(b[:]), ring: make([]entry, size), wake: make(chan struct{})}
}

// Epoch names this feed's sequence: numbers of another process (an earlier
// run of the root) mean nothing here.
func (f *Feed) Epoch() string { return f.epoch }

// Publish records the changes of one commit at the state's index and wakes
// the streams. Repeated changes of the same object are recorded once (a
// Usage change is dropped when the same commit has a real one).
func (f *Feed) Publish(index uint64, cs ...Change) {
	cs = dedupe(cs)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index = max(f.index, index)
	if len(cs) == 0 {
		return
	}
	f.seq++
	for _, c := range cs {
		if f.n == len(f.ring) {
			f.floor = f.ring[f.head].seq
		} else {
			f.n++
		}
		f.ring[f.head] = entry{seq: f.seq, index: index, c: c}
		f.head = (f.head + 1) % len(f.ring)
	}
	close(f.wake)
	f.wake = make(chan struct{})
}

// Current is the last sequence number and the state index it was at, and
// a channel closed at the next Publish.
func (f *Feed) Current() (seq, index uint64, next <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seq, f.index, f.wake
}

// Since returns the changes after sequence number after, up to seq (the
// last one), with the state index of the last of them. complete is false
// when some were dropped from the ring meanwhile.
func (f *Feed) Since(after uint64) (cs []Change, seq, index uint64, complete bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if after >= f.seq {
		return nil, f.seq, f.index, after == f.seq
	}
	if after < f.floor {
		return nil, f.seq, f.index, false
	}
	// Walk back from the newest entry to the first one after `after`.
	i, k := f.head, 0
	for k < f.n {
		j := (i - 1 + len(f.ring)) % len(f.ring)
		if f.ring[j].seq <= after {
			break
		}
		i, k = j, k+1
	}
	cs = make([]Change, 0, k)
	for ; k > 0; k-- {
		cs = append(cs, f.ring[i].c)
		i = (i + 1) % len(f.ring)
	}
	return cs, f.seq, f.index, true
}

// dedupe keeps the first change of each object, made a real one if any of
// its changes is.
func dedupe(cs []Change) []Change {
	if len(cs) < 2 {
		return cs
	}
	type key struct{ kind, id string }
	at := make(map[key]int, len(cs))
	out := cs[:0:0]
	for _, c := range cs {
		k := key{c.Kind, c.ID}
		if i, ok := at[k]; ok {
			out[i].Usage = out[i].Usage && c.Usage
			continue
		}
		at[k] = len(out)
		out = append(out, c)
	}
	return out
}
