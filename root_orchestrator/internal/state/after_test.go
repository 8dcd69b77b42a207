package state

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// TestWriteAfter: a change queued with WriteAfter while the waited-for
// change before it is in flight is not stored before it, and its ticket is
// durable only once both are stored.
func TestWriteAfter(t *testing.T) {
	g, s := gated(t)
	apps, tk, err := s.CreateApplications("u", oneApp("a", microservice("m", "")))
	if err != nil {
		t.Fatal(err)
	}
	g.settle(t, s, tk)
	svc := apps[0].Services[0]

	in, tk1, err := s.AddInstanceWithin(svc, Quota{})
	if err != nil {
		t.Fatal(err)
	}
	first := <-g.entered // the instance's batch is in flight
	answer := &struct{ N int }{in.Number}
	tk2 := s.WriteAfter(KindAnswer, "k1", answer)
	if !hasChange(first, KindInstance, in.Key) || hasChange(first, KindAnswer, "k1") {
		t.Fatalf("first batch %v: want the instance alone", kinds(first))
	}
	if isDurable(s, tk2) {
		t.Fatal("the answer is durable before anything is stored")
	}
	g.release <- struct{}{}
	durable(t, s, tk1)
	second := <-g.entered
	if !hasChange(second, KindAnswer, "k1") {
		t.Fatalf("second batch %v: want the answer", kinds(second))
	}
	if isDurable(s, tk2) {
		t.Fatal("the answer is durable before its batch is stored")
	}
	g.release <- struct{}{}
	durable(t, s, tk2)
	if got := g.Get(KindAnswer, "k1"); got != answer {
		t.Errorf("stored answer %v, want %v", got, answer)
	}

	// Queued together: one batch, and durable together.
	in2, tk3, err := s.AddInstanceWithin(svc, Quota{})
	if err != nil {
		t.Fatal(err)
	}
	tk4 := s.WriteAfter(KindAnswer, "k2", answer)
	batch := <-g.entered
	if hasChange(batch, KindInstance, in2.Key) && !hasChange(batch, KindAnswer, "k2") {
		// The loop took the instance before the answer was queued.
		g.release <- struct{}{}
		durable(t, s, tk3)
		batch = <-g.entered
	}
	if !hasChange(batch, KindAnswer, "k2") {
		t.Fatalf("batch %v: want the answer", kinds(batch))
	}
	g.release <- struct{}{}
	durable(t, s, tk4)
	durable(t, s, tk3) // implied
}

// TestHoldBack: a change queued with WriteAfter leaves a batch while a
// waited-for change queued before it stays behind, never otherwise, and
// never empties the batch.
func TestHoldBack(t *testing.T) {
	k := func(id string) changeKey { return changeKey{KindInstance, id} }
	a := func(id string) changeKey { return changeKey{KindAnswer, id} }
	pending := map[changeKey]queued{
		k("i1"): {seq: 1}, k("i2"): {seq: 2}, k("lazy"): {seq: 1, lazy: true},
		a("a1"): {Change: Change{after: true}, seq: 3}, a("a0"): {Change: Change{after: true}, seq: 1},
	}
	for _, tc := range []struct {
		name               string
		keys, rest         []changeKey
		wantKeys, wantRest []changeKey
	}{
		{"all in the batch", []changeKey{k("i1"), k("i2"), a("a1")}, nil, []changeKey{k("i1"), k("i2"), a("a1")}, nil},
		{"an older write behind", []changeKey{k("i1"), a("a1")}, []changeKey{k("i2")}, []changeKey{k("i1")}, []changeKey{k("i2"), a("a1")}},
		{"a newer write behind", []changeKey{k("i1"), a("a0")}, []changeKey{k("i2")}, []changeKey{k("i1"), a("a0")}, []changeKey{k("i2")}},
		{"only a lazy write behind", []changeKey{k("i2"), a("a1")}, []changeKey{k("lazy")}, []changeKey{k("i2"), a("a1")}, []changeKey{k("lazy")}},
		{"never empty", []changeKey{a("a1")}, []changeKey{k("i2")}, []changeKey{a("a1")}, []changeKey{k("i2")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &persister{pending: pending}
			keys, rest := p.holdBack(tc.keys, tc.rest)
			if !reflect.DeepEqual(keys, tc.wantKeys) || !reflect.DeepEqual(rest, tc.wantRest) {
				t.Errorf("holdBack = %v, %v; want %v, %v", keys, rest, tc.wantKeys, tc.wantRest)
			}
		})
	}
}

func hasChange(cs []Change, k Kind, id string) bool {
	for _, c := range cs {
		if c.Kind == k && c.ID == id {
			return true
		}
	}
	return false
}

func kinds(cs []Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c.Kind) + "/" + c.ID
	}
	return out
}

func isDurable(s *Store, tk Ticket) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	return s.Durable(ctx, tk) == nil
}
