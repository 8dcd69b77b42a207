package store

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestEvents: events saved are loaded back as they were (replaced, not
// appended, when saved again), and deleted ones are gone.
func TestEvents(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 6, 7, 0, 0, 123e6, time.UTC)
	a := []wire.Event{{Key: "s.0", Time: t0, Source: "root", Message: "requested by Admin"},
		{Key: "s.0", Time: t0.Add(time.Second), Source: "node n1 (cluster edge)", Message: "started"}}
	b := []wire.Event{{Key: "s.1", Time: t0, Source: "cluster edge", Message: "placed on node n2"}}
	if err := s.SaveEvents(ctx, map[string][]wire.Event{"s.0": a[:1], "s.1": b}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveEvents(ctx, map[string][]wire.Event{"s.0": a}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadEvents(ctx)
	if err != nil || !reflect.DeepEqual(got, map[string][]wire.Event{"s.0": a, "s.1": b}) {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if err := s.DeleteEvents(ctx, []string{"s.1", "nope"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadEvents(ctx); err != nil || len(got) != 1 || len(got["s.0"]) != 2 {
		t.Errorf("after delete: %+v, %v", got, err)
	}
}

// TestSaveEventsOfManyInstances: events of hundreds of instances saved
// again (replacing kept documents) are stored, and the store still answers
// (one command replacing about 100 documents hangs the embedded engine).
func TestSaveEventsOfManyInstances(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	const n = 300
	for round := range 2 {
		m := map[string][]wire.Event{}
		for i := range n {
			key := fmt.Sprintf("s.%d", i)
			m[key] = []wire.Event{{Key: key, Time: t0.Add(time.Duration(round) * time.Second), Source: "root", Message: fmt.Sprint("round ", round)}}
		}
		if err := s.SaveEvents(ctx, m); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	got, err := s.LoadEvents(ctx)
	if err != nil || len(got) != n || got["s.7"][0].Message != "round 1" {
		t.Fatalf("loaded %d instances' events (s.7: %+v), %v", len(got), got["s.7"], err)
	}
}

// TestSaveEventsKeptByAnother: events another Store kept (another run of
// the root that has not loaded them) are replaced, not refused.
func TestSaveEventsKeptByAnother(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	old := []wire.Event{{Key: "s.0", Time: t0, Source: "root", Message: "old"}}
	if err := s.SaveEvents(ctx, map[string][]wire.Event{"s.0": old}); err != nil {
		t.Fatal(err)
	}
	other := New(s.events.Database(), slog.New(slog.DiscardHandler))
	now := []wire.Event{{Key: "s.0", Time: t0.Add(time.Second), Source: "root", Message: "new"}, {Key: "s.0", Time: t0.Add(2 * time.Second), Source: "root", Message: "newer"}}
	if err := other.SaveEvents(ctx, map[string][]wire.Event{"s.0": now}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadEvents(ctx); err != nil || !reflect.DeepEqual(got["s.0"], now) {
		t.Errorf("loaded %+v, %v; want %+v", got["s.0"], err, now)
	}
}
