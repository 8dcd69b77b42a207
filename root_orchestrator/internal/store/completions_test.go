package store

import (
	"context"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// TestCompletionsRoundTrip: an indexed one-shot service keeps its
// completions and retries through the store.
func TestCompletionsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	svc := &state.Service{ID: "s1", Name: "job", Namespace: "ns", AppID: "a1", Owner: "u", CreatedAt: now, UpdatedAt: now,
		Spec: state.ServiceSpec{Virtualization: "container", Code: "x", OneShot: true, Completions: 4, Retries: 0,
			Disconnect: state.DefaultDisconnect(true)}}
	plain := &state.Service{ID: "s2", Name: "old", Namespace: "ns", AppID: "a1", Owner: "u", CreatedAt: now, UpdatedAt: now,
		Spec: state.ServiceSpec{Virtualization: "container", Code: "x", OneShot: true, Completions: 2, Retries: 6,
			Disconnect: state.DefaultDisconnect(true)}}
	if err := s.Write(ctx, []state.Change{{Kind: state.KindService, ID: "s1", Object: svc}, {Kind: state.KindService, ID: "s2", Object: plain}}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]state.ServiceSpec{}
	for _, x := range d.Services {
		got[x.ID] = x.Spec
	}
	if g := got["s1"]; g.Completions != 4 || g.Retries != 0 {
		t.Errorf("s1 loaded with completions %d, retries %d; want 4, 0", g.Completions, g.Retries)
	}
	if g := got["s2"]; g.Completions != 2 || g.Retries != 6 {
		t.Errorf("s2 loaded with completions %d, retries %d; want 2, 6", g.Completions, g.Retries)
	}
}
