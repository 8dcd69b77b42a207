package dispatch

import "time"

// Observed is what the store says of a cluster's liveness: whether it is
// marked active and the (wall-clock) time of its last sync, as written by
// whichever root replica took that sync.
type Observed struct {
	ID       string
	Active   bool
	LastSeen time.Time
}

// liveness judges clusters' silence on this process's own monotonic
// clock, never on stored wall-clock times: a stored last-seen time that
// stopped moving while this root was down, paused or had its clock stepped
// is no evidence against a cluster. A cluster counts as heard from when
// this process first sees it, and again each time its stored last-seen
// time changes (any replica's sync moves it). A pause of this process (no
// observation for longer than stall) gives every cluster a fresh grace:
// whatever silence fell into the pause is the root's, not the cluster's.
type liveness struct {
	grace time.Duration
	stall time.Duration
	last  time.Time // previous observation (monotonic)
	marks map[string]mark
}

type mark struct {
	lastSeen time.Time // the stored value as last read
	heard    time.Time // when this process saw it change (monotonic)
}

func newLiveness(grace, every time.Duration) *liveness {
	// A pass runs every `every`; one that comes more than half a grace (and
	// at least five passes) late means this process did not run.
	stall := max(grace/2, 5*every)
	return &liveness{grace: grace, stall: stall, marks: map[string]mark{}}
}

// observe takes the clusters as stored now and returns those of the
// active ones silent for longer than the grace, each with the stored
// last-seen time the verdict rests on (to mark it inactive only if no sync
// moved it meanwhile). now must come from time.Now (monotonic).
func (l *liveness) observe(now time.Time, clusters []Observed) (silent []Observed, paused time.Duration) {
	if !l.last.IsZero() && now.Sub(l.last) > l.stall {
		paused = now.Sub(l.last)
		for id, m := range l.marks {
			m.heard = now
			l.marks[id] = m
		}
	}
	l.last = now
	seen := make(map[string]bool, len(clusters))
	for _, c := range clusters {
		seen[c.ID] = true
		m, ok := l.marks[c.ID]
		if !ok || !m.lastSeen.Equal(c.LastSeen) {
			l.marks[c.ID] = mark{lastSeen: c.LastSeen, heard: now}
			continue
		}
		if c.Active && now.Sub(m.heard) > l.grace {
			silent = append(silent, c)
		}
	}
	for id := range l.marks {
		if !seen[id] {
			delete(l.marks, id) // deleted cluster
		}
	}
	return silent, paused
}
