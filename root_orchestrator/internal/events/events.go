// Package events keeps what happened to each instance, as the tiers told
// it (wire.Event), for the API: the latest PerInstance events of each
// instance, in time order, in memory; Changes hands what changed to be
// stored (the root keeps them in MongoDB, so a restart keeps them).
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
	// changed: instances whose events changed since Changes, gone: those
	// pruned.
	changed, gone map[string]bool
}

// New makes an empty log keeping per events of each instance
// (PerInstance if per <= 0).
func New(per int) *Log {
	if per <= 0 {
		per = PerInstance
	}
	return &Log{per: per, m: map[string][]wire.Event{}, changed: map[string]bool{}, gone: map[string]bool{}}
}

// Add records events (of any instances); an instance keeps its newest.
func (l *Log) Add(evs ...wire.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range evs {
		l.add(ev)
		l.changed[ev.Key] = true
		delete(l.gone, ev.Key)
	}
}

// Load adds events read back from the store, as Add does; they are not
// changes.
func (l *Log) Load(m map[string][]wire.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, evs := range m {
		for _, ev := range evs {
			l.add(ev)
		}
	}
}

// add puts ev in its instance's events, in time order (events of several
// tiers and reports interleave), keeping the newest. Caller holds mu.
func (l *Log) add(ev wire.Event) {
	q := l.m[ev.Key]
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

// Changes returns the instances whose events changed since the last call,
// with their events, and those forgotten.
func (l *Log) Changes() (save map[string][]wire.Event, remove []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	save = make(map[string][]wire.Event, len(l.changed))
	for k := range l.changed {
		save[k] = slices.Clone(l.m[k])
	}
	for k := range l.gone {
		remove = append(remove, k)
	}
	clear(l.changed)
	clear(l.gone)
	return save, remove
}

// Unsaved marks changes Changes returned as not stored: the next call
// returns them again.
func (l *Log) Unsaved(save map[string][]wire.Event, remove []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range save {
		if _, ok := l.m[k]; ok {
			l.changed[k] = true
		}
	}
	for _, k := range remove {
		if _, ok := l.m[k]; !ok {
			l.gone[k] = true
		}
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
			delete(l.changed, k)
			l.gone[k] = true
		}
	}
}
