// Package usage keeps the CPU and memory figures of instances and nodes
// over the last hour, as their clusters reported them: per key a bounded
// ring of one sample per Step (the latest figures of that step), in memory
// only (a restarted root starts empty). /metrics keeps exposing the
// current figures for Prometheus users.
package usage

import (
	"sync"
	"time"
)

const (
	// Step is the time one sample stands for.
	Step = time.Minute
	// Window is how far back samples are kept.
	Window = time.Hour
)

// Sample is the figures of one step: CPU in percent of one core (an
// instance) or of the node, memory in MB (an instance) or percent (a
// node).
type Sample struct {
	Time   time.Time `json:"time"`
	CPU    float64   `json:"cpu_percent"`
	Memory float64   `json:"memory"`
}

// Rings holds a ring per key. Its methods are safe for concurrent use.
type Rings struct {
	mu   sync.Mutex
	step time.Duration
	size int
	m    map[string]*ring
	// pruned: when Prune last looked.
	pruned time.Time
}

type ring struct {
	s    []Sample // oldest first, at most size
	seen time.Time
}

// New keeps samples of step over window (Step, Window if zero).
func New(step, window time.Duration) *Rings {
	if step <= 0 {
		step = Step
	}
	if window <= 0 {
		window = Window
	}
	return &Rings{step: step, size: int(window / step), m: map[string]*ring{}}
}

// Add records figures of key at t: they replace those of t's step when it
// has some, else start a new sample; samples older than the window go.
func (r *Rings) Add(key string, t time.Time, cpu, memory float64) {
	t = t.UTC().Truncate(r.step)
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.m[key]
	if g == nil {
		g = &ring{}
		r.m[key] = g
	}
	g.seen = t
	if n := len(g.s); n > 0 && !g.s[n-1].Time.Before(t) {
		g.s[n-1].CPU, g.s[n-1].Memory = cpu, memory
		return
	}
	g.s = append(g.s, Sample{Time: t, CPU: cpu, Memory: memory})
	cut := 0
	for cut < len(g.s) && (len(g.s)-cut > r.size || t.Sub(g.s[cut].Time) >= time.Duration(r.size)*r.step) {
		cut++
	}
	if cut > 0 {
		g.s = append(g.s[:0], g.s[cut:]...)
	}
}

// Of returns key's samples within the window before now, oldest first.
func (r *Rings) Of(key string, now time.Time) []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.m[key]
	if g == nil {
		return []Sample{}
	}
	from := now.UTC().Add(-time.Duration(r.size) * r.step)
	out := make([]Sample, 0, len(g.s))
	for _, s := range g.s {
		if s.Time.After(from) {
			out = append(out, s)
		}
	}
	return out
}

// Prune forgets the keys not seen within the window before now; it looks
// at most once a step (a cheap call to make often).
func (r *Rings) Prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.pruned) < r.step {
		return
	}
	r.pruned = now
	for k, g := range r.m {
		if now.Sub(g.seen) > time.Duration(r.size)*r.step {
			delete(r.m, k)
		}
	}
}
