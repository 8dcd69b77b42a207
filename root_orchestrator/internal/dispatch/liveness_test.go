package dispatch

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLiveness drives the tracker through sequences of passes: at each
// step the clusters as stored (active, stored last-seen offset) and the
// clusters it must then call silent.
func TestLiveness(t *testing.T) {
	const grace = 30 * time.Second
	const inactive = -1
	wall := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	type step struct {
		at     time.Duration  // this process's clock
		stored map[string]int // id → stored last-seen, in seconds after wall (inactive: marked inactive)
		silent []string       // expected verdict
		paused bool           // expected: a pause was detected
	}
	seen := func(kv ...any) map[string]int {
		m := map[string]int{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(int)
		}
		return m
	}
	// passes every second from `from` to `to` with the same stored state.
	steady := func(from, to time.Duration, stored map[string]int) []step {
		var out []step
		for at := from; at <= to; at += time.Second {
			out = append(out, step{at: at, stored: stored})
		}
		return out
	}
	cat := func(parts ...[]step) []step { return slices.Concat(parts...) }
	tests := []struct {
		name  string
		steps []step
	}{
		{
			// The bug: the root was down for an hour; the stored last-seen is an
			// hour old at its first pass. That is not the cluster's silence.
			name: "restarted root gives a fresh grace",
			steps: cat(
				steady(0, 29*time.Second, seen("a", -3600)),
				steady(30*time.Second, 59*time.Second, seen("a", 30)), // it synced
			),
		},
		{
			name: "a cluster that never syncs after the start is lost after the grace",
			steps: cat(
				steady(0, 30*time.Second, seen("a", -3600)),
				[]step{{at: 31 * time.Second, stored: seen("a", -3600), silent: []string{"a"}}},
			),
		},
		{
			name: "any change of the stored time is a sign of life, even backwards (another replica's clock)",
			steps: cat(
				steady(0, 24*time.Second, seen("a", 100)),
				steady(25*time.Second, 55*time.Second, seen("a", 90)),
				[]step{{at: 56 * time.Second, stored: seen("a", 90), silent: []string{"a"}}},
			),
		},
		{
			name: "only the silent one of two",
			steps: cat(
				steady(0, 19*time.Second, seen("a", 0, "b", 0)),
				steady(20*time.Second, 30*time.Second, seen("a", 20, "b", 0)),
				[]step{{at: 31 * time.Second, stored: seen("a", 20, "b", 0), silent: []string{"b"}}},
			),
		},
		{
			name: "inactive clusters are not lost again",
			steps: []step{
				{at: 0, stored: seen("a", inactive)},
				{at: time.Hour, stored: seen("a", inactive), paused: true},
				{at: time.Hour + time.Second, stored: seen("a", inactive)},
			},
		},
		{
			// The root process was stopped (SIGSTOP, a VM pause) for 40 s; the
			// clusters could not reach it. The first pass after must not judge.
			name: "a paused root gives a fresh grace",
			steps: cat(
				steady(0, 10*time.Second, seen("a", 0)),
				[]step{{at: 50 * time.Second, stored: seen("a", 0), paused: true}},
				steady(51*time.Second, 80*time.Second, seen("a", 0)),
				[]step{{at: 81 * time.Second, stored: seen("a", 0), silent: []string{"a"}}},
			),
		},
		{
			name: "a late pass within the stall bound is no pause",
			steps: []step{
				{at: 0, stored: seen("a", 0)},
				{at: 14 * time.Second, stored: seen("a", 0)},
				{at: 28 * time.Second, stored: seen("a", 0)},
				{at: 31 * time.Second, stored: seen("a", 0), silent: []string{"a"}},
			},
		},
		{
			name: "a deleted cluster is forgotten; one re-added under the same id starts fresh",
			steps: cat(
				steady(0, 9*time.Second, seen("a", 0)),
				steady(10*time.Second, 19*time.Second, seen()),
				steady(20*time.Second, 50*time.Second, seen("a", 0)),
				[]step{{at: 51 * time.Second, stored: seen("a", 0), silent: []string{"a"}}},
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLiveness(grace, time.Second)
			start := time.Now() // monotonic, like the dispatcher's
			for i, s := range tt.steps {
				var obs []Observed
				for id, sec := range s.stored {
					obs = append(obs, Observed{ID: id, Active: sec != inactive, LastSeen: wall.Add(time.Duration(sec) * time.Second)})
				}
				slices.SortFunc(obs, func(a, b Observed) int { return strings.Compare(a.ID, b.ID) })
				silent, paused := l.observe(start.Add(s.at), obs)
				var ids []string
				for _, o := range silent {
					ids = append(ids, o.ID)
					if want := wall.Add(time.Duration(s.stored[o.ID]) * time.Second); !o.LastSeen.Equal(want) {
						t.Errorf("step %d: verdict on %s rests on last-seen %s, want the stored %s", i, o.ID, o.LastSeen, want)
					}
				}
				if !slices.Equal(ids, s.silent) {
					t.Errorf("step %d (at %s): silent %v, want %v", i, s.at, ids, s.silent)
				}
				if (paused > 0) != s.paused {
					t.Errorf("step %d (at %s): paused %s, want a pause: %v", i, s.at, paused, s.paused)
				}
			}
		})
	}
}
