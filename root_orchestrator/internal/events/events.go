// Package events keeps what happened to each instance, as the tiers told
// it (wire.Event), for the API: the latest PerInstance events of each
// instance, in time order, in memory only (a restarted root starts empty).
package events

import (
	"slices"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// PerInstance is how many events of one instance are kept.
const PerInstance = 50

// Log holds the events. Its methods are safe for concurrent use.
type Log struct {
	mu       sync.Mutex
	per      int
	m        map[string][]wire.Event
	prunedAt time.Time
}

// New makes an empty log keeping per events of each instance
// (PerInstance if per <= 0).
func New(per int) *Log {
	if per <= 0 {
		per = PerInstance
	}
	return &Log{per: per, m: map[string][]wire.Event{}}
}

// Add records events (of any instances); an instance keeps its newest.
func (l *Log) Add(evs ...wire.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range evs {
		q := l.m[ev.Key]
		// In time order: events of several tiers and reports interleave.
		i := len(q)
		for i > 0 && q[i-1].Time.After(ev.Time) {
			i--
		}
		q = slices.Insert(q, i, ev)
		if over := len(q) - l.per; over > 0 {
			q = q[over:]
		}
		l.m[ev.Key] = q
	}
}

// Of returns instance key's events, oldest first.
func (l *Log) Of(key string) []wire.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.m[key])
}

// Prune forgets the instances for which keep is false, at most once per
// every (a cheap call to make often).
func (l *Log) Prune(every time.Duration, keep func(key string) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.prunedAt) < every {
		return
	}
	l.prunedAt = time.Now()
	for k := range l.m {
		if !keep(k) {
			delete(l.m, k)
		}
	}
}
