package manager

import (
	"context"
	"slices"
	"testing"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestOverloadedInstanceRunsTheChosenImplementation: an instance whose
// spec lists a container and a wasm implementation, pinned to a node that
// runs only wasm, is given to that node as a plain wasm spec; its status
// names the implementation and why the container one was not taken, also
// after the node reports, and only the wasm build's resources are
// reserved.
func TestOverloadedInstanceRunsTheChosenImplementation(t *testing.T) {
	rec := &recorder{desired: map[string]wire.NodeDesired{}}
	m := newManager(t, state.NewMemory(), rec)
	ctx := context.Background()
	info := wire.NodeInfo{Arch: "amd64", Virtualizations: []string{"wasm"}, Capacity: wire.Resources{MilliCPU: 2000, MemoryMB: 2048}}
	id, err := m.RegisterNode(ctx, wire.NodeRegisterRequest{Name: "w1", Arch: info.Arch, Virtualizations: info.Virtualizations,
		Capacity: info.Capacity}, "password-w1")
	if err != nil {
		t.Fatal(err)
	}
	info.Active = true
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: info})
	join(t, m, "c1n") // containers only

	ctr := wire.Implementation{Name: "va-x86", Virtualization: "container", Code: "docker.io/x/va:1",
		Resources: wire.Resources{MilliCPU: 1000, MemoryMB: 512}}
	wasm := wire.Implementation{Name: "va-wasm", Virtualization: "wasm", Code: "https://h/va.wasm",
		Resources: wire.Resources{MilliCPU: 100, MemoryMB: 32}}
	spec := wire.InstanceSpec{Key: wire.InstanceKey("va", 0), ServiceID: "va", Implementations: []wire.Implementation{ctr, wasm},
		Constraints: []wire.Constraint{{Type: "direct", Node: "w1"}}}
	spec = withFirst(spec)
	m.SetDesired([]wire.InstanceSpec{spec}, nil)
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	d, ok := rec.desired[id]
	if !ok || len(d.Instances) != 1 {
		t.Fatalf("desired set of w1: %+v", d)
	}
	got := d.Instances[0]
	if got.Virtualization != "wasm" || got.Code != wasm.Code || got.Implementations != nil || got.Resources != wasm.Resources {
		t.Errorf("node spec %+v, want the wasm implementation alone", got)
	}
	wantChoice := []string{"va-x86 (container): no node fits: 1 does not run container, 1 is not in the direct constraint's node list",
		"va-wasm (wasm): chosen (node w1)"}
	check := func(when string) {
		t.Helper()
		st := m.Statuses()[0]
		if st.Implementation != "va-wasm" || !slices.Equal(st.Choice, wantChoice) {
			t.Errorf("%s: implementation %q, choice %q; want va-wasm, %q", when, st.Implementation, st.Choice, wantChoice)
		}
	}
	check("placed")
	m.HandleReport(wire.NodeReport{Version: wire.Version, NodeID: id, Node: info,
		Instances: []wire.InstanceStatus{{Key: spec.Key, Status: wire.StatusRunning}}})
	check("running")
	for _, n := range m.Nodes() {
		if n.ID == id && n.Reserved != wasm.Resources {
			t.Errorf("w1 reserves %+v, want the wasm build's %+v", n.Reserved, wasm.Resources)
		}
	}
}

// withFirst sets a spec's own fields to its first implementation's, as the
// root sends it.
func withFirst(s wire.InstanceSpec) wire.InstanceSpec {
	v := s.Implement(0)
	v.Implementations = s.Implementations
	return v
}
