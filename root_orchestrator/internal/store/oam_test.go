package store

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// TestOAMSourceRoundTrip: an application made from an OAM manifest keeps
// the manifest as written and what its components became through the
// store; an SLA's application loads without one.
func TestOAMSourceRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	oam := &state.Application{ID: "a1", Name: "shop", Namespace: "default", Owner: "u", Services: []string{"s1", "s2"},
		OAM: &state.OAMSource{Name: "my-shop", Manifest: "apiVersion: core.oam.dev/v1beta1\n# as written\n",
			Components: []state.OAMComponent{{Name: "web-front", ServiceID: "s1", Replicas: 2}, {Name: "worker", ServiceID: "s2", Replicas: 1}},
			Steps:      []state.OAMStep{{Name: "first", Components: []string{"worker"}}, {Name: "then", Components: []string{"web-front"}}},
			Step:       1, Phase: state.OAMFailed, Message: "step then: component web-front: instance 0 FAILED",
			Revision: 2, Revisions: []state.OAMRevision{{Number: 1, Manifest: "one", CreatedAt: now}, {Number: 2, Manifest: "two", CreatedAt: now}}},
		CreatedAt: now, UpdatedAt: now}
	plain := &state.Application{ID: "a2", Name: "sla", Namespace: "default", Owner: "u", Services: []string{}, CreatedAt: now, UpdatedAt: now}
	if err := s.Write(ctx, []state.Change{{Kind: state.KindApp, ID: "a1", Object: oam}, {Kind: state.KindApp, ID: "a2", Object: plain}}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*state.Application{}
	for _, a := range d.Apps {
		got[a.ID] = a
	}
	if !reflect.DeepEqual(got["a1"].OAM, oam.OAM) {
		t.Errorf("OAM source loaded as %+v, want %+v", got["a1"].OAM, oam.OAM)
	}
	if got["a2"] == nil || got["a2"].OAM != nil {
		t.Errorf("SLA application loaded as %+v", got["a2"])
	}
}
