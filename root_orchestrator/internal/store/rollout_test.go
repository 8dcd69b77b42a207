package store

import (
	"context"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// TestRolloutRoundTrip: an edited service's rollout and the old spec its
// instances still run with survive the store.
func TestRolloutRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	svc := &state.Service{ID: "s1", Name: "web", Namespace: "ns", AppID: "a1", Owner: "u", CreatedAt: now, UpdatedAt: now,
		Spec:    state.ServiceSpec{Virtualization: "container", Code: "img:v2", Disconnect: state.DefaultDisconnect(false)},
		Rollout: &state.Rollout{Replicas: 3, Message: "stopped"}}
	old := &state.Instance{Key: "s1.0", ServiceID: "s1", Owner: "u", Status: "RUNNING", CreatedAt: now, UpdatedAt: now,
		Spec: &state.ServiceSpec{Virtualization: "container", Code: "img:v1", Cmd: []string{"sh", "-c", "x"}, MemoryMB: 64,
			Environment: []string{"A=1"}, Disconnect: state.DefaultDisconnect(false)}}
	fresh := &state.Instance{Key: "s1.1", ServiceID: "s1", Number: 1, Owner: "u", Status: "RUNNING", CreatedAt: now, UpdatedAt: now}
	if err := s.Write(ctx, []state.Change{{Kind: state.KindService, ID: "s1", Object: svc},
		{Kind: state.KindInstance, ID: old.Key, Object: old}, {Kind: state.KindInstance, ID: fresh.Key, Object: fresh}}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Services) != 1 || d.Services[0].Rollout == nil || *d.Services[0].Rollout != *svc.Rollout {
		t.Fatalf("service loaded with rollout %+v; want %+v", d.Services[0].Rollout, svc.Rollout)
	}
	got := map[string]*state.Instance{}
	for _, in := range d.Instances {
		got[in.Key] = in
	}
	if sp := got["s1.0"].Spec; sp == nil || sp.Code != "img:v1" || sp.MemoryMB != 64 || len(sp.Cmd) != 3 || sp.Environment[0] != "A=1" {
		t.Errorf("old instance loaded with spec %+v", sp)
	}
	if sp := got["s1.1"].Spec; sp != nil {
		t.Errorf("new instance loaded with its own spec %+v", sp)
	}
}
