package scheduler

import (
	"errors"
	"slices"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// overloaded is a spec with the given implementations in preference order,
// its own fields the first one's (as the root sends it).
func overloaded(impls ...wire.Implementation) wire.InstanceSpec {
	s := wire.InstanceSpec{Key: "svc.0", ServiceID: "svc", Resources: wire.Resources{MilliCPU: 100, MemoryMB: 64},
		Implementations: impls}
	v := s.Implement(0)
	v.Implementations = impls
	return v
}

func node(name, arch string, virts ...string) Node {
	n := mkNode(name, 4000, 4096, 0, 0)
	n.Arch, n.Virtualizations = arch, virts
	return n
}

var (
	wasmImpl  = wire.Implementation{Name: "va-wasm", Virtualization: "wasm", Code: "https://x/va.wasm", Resources: wire.Resources{MilliCPU: 100, MemoryMB: 64}}
	ctrImpl   = wire.Implementation{Name: "va-x86", Virtualization: "container", Code: "docker.io/x/va:1", Arch: []string{"amd64"}}
	armImpl   = wire.Implementation{Name: "va-arm", Virtualization: "container", Code: "docker.io/x/va:1-arm", Arch: []string{"arm64"}}
	bigImpl   = wire.Implementation{Name: "va-big", Virtualization: "container", Code: "docker.io/x/va:big", Resources: wire.Resources{MemoryMB: 8192}}
	ukImpl    = wire.Implementation{Name: "va-uk", Virtualization: "unikernel", Code: "https://x/va.img"}
	chosenCtr = "va-x86 (container): chosen (node n2)"
)

func TestChooseImplementation(t *testing.T) {
	tests := []struct {
		name    string
		nodes   []Node
		impls   []wire.Implementation
		want    string // node name, "" for no fit
		wantImp int
		reasons []string
	}{
		{name: "first preference where some node runs it",
			nodes: []Node{node("n1", "amd64", "wasm"), node("n2", "amd64", "container", "wasm")},
			impls: []wire.Implementation{ctrImpl, wasmImpl}, want: "n2", wantImp: 0,
			reasons: []string{chosenCtr, "va-wasm (wasm): not needed (va-x86 (container) is preferred)"}},
		{name: "falls back to wasm on a node without containers",
			nodes: []Node{node("n1", "amd64", "wasm")},
			impls: []wire.Implementation{ctrImpl, wasmImpl}, want: "n1", wantImp: 1,
			reasons: []string{"va-x86 (container): no node fits: 1 does not run container", "va-wasm (wasm): chosen (node n1)"}},
		{name: "architecture decides between two container builds",
			nodes: []Node{node("pi", "aarch64", "container")},
			impls: []wire.Implementation{ctrImpl, armImpl}, want: "pi", wantImp: 1,
			reasons: []string{"va-x86 (container): no node fits: 1 is not amd64", "va-arm (container): chosen (node pi)"}},
		{name: "resources of an implementation replace the spec's",
			nodes: []Node{node("n1", "amd64", "container", "wasm")},
			impls: []wire.Implementation{bigImpl, wasmImpl}, want: "n1", wantImp: 1,
			reasons: []string{"va-big (container): no node fits: 1 lacks memory (need 8192 MB, at most 4096 MB free)", "va-wasm (wasm): chosen (node n1)"}},
		{name: "nothing runs any implementation",
			nodes:   []Node{node("n1", "amd64", "container")},
			impls:   []wire.Implementation{wasmImpl, ukImpl},
			reasons: []string{"va-wasm (wasm): no node fits: 1 does not run wasm", "va-uk (unikernel): no node fits: 1 does not run unikernel"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := overloaded(tt.impls...)
			res := PlaceAllNodes("edge", tt.nodes, []wire.InstanceSpec{spec})[0]
			if tt.want == "" {
				var e *NoImplementationError
				if !errors.As(res.Err, &e) || !errors.Is(res.Err, ErrNoFit) {
					t.Fatalf("err = %v, want a NoImplementationError", res.Err)
				}
			} else if res.Err != nil || res.Placement.NodeName != tt.want || res.Choice.Index != tt.wantImp {
				t.Fatalf("placed on %q with implementation %d (err %v), want %q with %d",
					res.Placement.NodeName, res.Choice.Index, res.Err, tt.want, tt.wantImp)
			}
			if !slices.Equal(res.Choice.Reasons, tt.reasons) {
				t.Errorf("reasons:\n got %q\nwant %q", res.Choice.Reasons, tt.reasons)
			}
			// The root decides the same way between clusters.
			c := PlaceAllClusters([]Cluster{{ID: "c1", Name: "edge", Active: true, Nodes: tt.nodes}}, []wire.InstanceSpec{spec})[0]
			if (c.Err == nil) != (tt.want != "") || (c.Err == nil && c.Choice.Index != tt.wantImp) {
				t.Errorf("root: implementation %d, err %v", c.Choice.Index, c.Err)
			}
		})
	}
}

func TestChooseReservesTheChosenImplementation(t *testing.T) {
	// One node with 4096 MB, wasm and containers; the container build
	// takes 3000 MB, the wasm build 64: the second instance falls back to
	// wasm because the first took the room.
	big := wire.Implementation{Name: "ctr", Virtualization: "container", Code: "img", Resources: wire.Resources{MemoryMB: 3000}}
	a, b := overloaded(big, wasmImpl), overloaded(big, wasmImpl)
	b.Key = "svc.1"
	res := PlaceAllNodes("edge", []Node{node("n1", "amd64", "container", "wasm")}, []wire.InstanceSpec{a, b})
	if res[0].Choice.Index != 0 || res[1].Choice.Index != 1 {
		t.Fatalf("choices %d and %d, want 0 then 1 (%v)", res[0].Choice.Index, res[1].Choice.Index, res[1].Choice.Reasons)
	}
	if got := res[0].Choice.Name(&a); got != "ctr" {
		t.Errorf("Name = %q", got)
	}
}

func TestSingleImplementationUnchanged(t *testing.T) {
	res := PlaceAllNodes("edge", []Node{mkNode("n1", 4000, 4096, 0, 0)}, []wire.InstanceSpec{mkSpec(100, 64)})[0]
	if res.Err != nil || res.Choice.Index != -1 || res.Choice.Reasons != nil {
		t.Fatalf("result %+v", res)
	}
}

func TestNodeSelectorReason(t *testing.T) {
	n1, n2 := mkNode("n1", 4000, 4096, 0, 0), mkNode("n2", 4000, 4096, 0, 0)
	n1.Labels = map[string]string{"zone": "b"}
	spec := mkSpec(100, 64)
	spec.NodeSelector = map[string]string{"zone": "a", "camera": "yes"}
	_, err := PickNode("edge", []Node{n1, n2}, spec)
	if err == nil || err.Error() != "no node fits: 2 do not have the labels camera=yes, zone=a" {
		t.Fatalf("err = %v", err)
	}
	n2.Labels = map[string]string{"zone": "a", "camera": "yes", "x": "1"}
	if p, err := PickNode("edge", []Node{n1, n2}, spec); err != nil || p.NodeName != "n2" {
		t.Fatalf("placed %+v, %v", p, err)
	}
}
