package store

import (
	"context"
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
