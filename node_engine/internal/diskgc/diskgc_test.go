package diskgc_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/node_engine/internal/diskgc"
)

func TestPlan(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	item := func(store, id string, bytes int64, lastUsed time.Time) diskgc.Candidate {
		return diskgc.Candidate{Store: store, Item: diskgc.Item{ID: id, Bytes: bytes, LastUsed: lastUsed}}
	}
	inUse := func(c diskgc.Candidate) diskgc.Candidate { c.InUse = true; return c }
	minIdle := func(c diskgc.Candidate, d time.Duration) diskgc.Candidate { c.MinIdle = d; return c }
	for _, tc := range []struct {
		name   string
		items  []diskgc.Candidate
		budget int64
		want   []string
	}{
		{"under budget", []diskgc.Candidate{item("w", "a", 10, ago(time.Hour))}, 10, nil},
		{"least recently used first, across stores", []diskgc.Candidate{
			item("w", "new", 10, ago(time.Minute)), item("u", "old", 10, ago(3*time.Hour)), item("w", "mid", 10, ago(2*time.Hour)),
		}, 15, []string{"u/old", "w/mid"}},
		{"never in use", []diskgc.Candidate{
			inUse(item("w", "used", 100, ago(10*time.Hour))), item("w", "a", 10, ago(time.Hour)),
		}, 50, []string{"w/a"}},
		{"not before MinIdle", []diskgc.Candidate{
			minIdle(item("c", "img", 100, ago(30*time.Minute)), time.Hour), minIdle(item("c", "idle", 100, ago(2*time.Hour)), time.Hour),
		}, 150, []string{"c/idle"}},
		{"stops once under", []diskgc.Candidate{
			item("w", "a", 60, ago(3*time.Hour)), item("w", "b", 60, ago(2*time.Hour)), item("w", "c", 60, ago(time.Hour)),
		}, 130, []string{"w/a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := diskgc.Plan(tc.items, tc.budget, now)
			var ids []string
			for _, c := range got {
				ids = append(ids, c.Store+"/"+c.ID)
			}
			if !reflect.DeepEqual(ids, tc.want) {
				t.Errorf("Plan = %v, want %v", ids, tc.want)
			}
		})
	}
}

type memStore struct {
	name    string
	items   []diskgc.Item
	removed []string
	busy    map[string]bool
}

func (m *memStore) Name() string                                 { return m.name }
func (m *memStore) Items(context.Context) ([]diskgc.Item, error) { return m.items, nil }
func (m *memStore) Remove(_ context.Context, id string) error {
	if m.busy[id] {
		return fmt.Errorf("%s: %w", id, diskgc.ErrInUse)
	}
	m.removed = append(m.removed, id)
	return nil
}

// TestCollect: an item that came into use between listing and removal is
// kept and not counted as freed.
func TestCollect(t *testing.T) {
	now := time.Now()
	s := &memStore{name: "w", busy: map[string]bool{"b": true}, items: []diskgc.Item{
		{ID: "a", Bytes: 100, LastUsed: now.Add(-3 * time.Hour)},
		{ID: "b", Bytes: 100, LastUsed: now.Add(-2 * time.Hour)},
		{ID: "c", Bytes: 100, LastUsed: now.Add(-time.Hour)},
	}}
	c := diskgc.Collector{Budget: 50, Stores: []diskgc.Store{s}}
	res, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 300 || res.Freed != 200 || !reflect.DeepEqual(s.removed, []string{"a", "c"}) {
		t.Errorf("Collect = total %d, freed %d, removed %v; want 300, 200, [a c]", res.Total, res.Freed, s.removed)
	}
}
