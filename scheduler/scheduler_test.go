package scheduler

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

func TestPickCluster(t *testing.T) {
	gpuNodes := []Node{mkNode("xavier1", 4000, 8192, 2000, 4096), mkNode("xavier2", 4000, 8192, 0, 0)}
	tests := []struct {
		name        string
		clusters    []Cluster
		constraints []wire.Constraint
		need        wire.Resources
		want        string // cluster ID/node name, or "" for no fit
		wantReasons map[string]int
		wantNodes   map[string]int
	}{
		{name: "per-node capacity, never summed",
			// Two nodes with 1024 MB free each: 2048 MB free in all, yet no
			// node takes 1536 MB.
			clusters: []Cluster{{ID: "c1", Name: "edge", Active: true, Nodes: []Node{
				mkNode("n1", 4000, 2048, 0, 1024), mkNode("n2", 4000, 2048, 0, 1024)}}},
			need:        wire.Resources{MilliCPU: 100, MemoryMB: 1536},
			wantReasons: map[string]int{"has no node that fits": 1},
			wantNodes:   map[string]int{"lacks memory (need 1536 MB, at most 1024 MB free)": 2}},
		{name: "per-node capacity, another cluster has a big node",
			clusters: []Cluster{
				{ID: "c1", Name: "edge", Active: true, Nodes: []Node{mkNode("n1", 4000, 2048, 0, 1024), mkNode("n2", 4000, 2048, 0, 1024)}},
				{ID: "c2", Name: "core", Active: true, Nodes: []Node{mkNode("big", 4000, 2048, 0, 0)}},
			},
			need: wire.Resources{MilliCPU: 100, MemoryMB: 1536}, want: "c2/big"},
		{name: "inactive cluster",
			clusters: []Cluster{
				{ID: "c1", Name: "edge", Active: false, Nodes: []Node{mkNode("n1", 4000, 8192, 3000, 0)}},
				{ID: "c2", Name: "core", Active: true, Nodes: []Node{mkNode("n2", 4000, 8192, 0, 0)}},
			}, want: "c2/n2"},
		{name: "only inactive clusters",
			clusters:    []Cluster{{ID: "c1", Name: "edge", Nodes: []Node{mkNode("n1", 4000, 8192, 0, 0)}}},
			wantReasons: map[string]int{"is inactive": 1}},
		{name: "inactive nodes in an active cluster",
			clusters: []Cluster{{ID: "c1", Name: "edge", Active: true, Nodes: func() []Node {
				n := mkNode("n1", 4000, 8192, 0, 0)
				n.Active = false
				return []Node{n}
			}()}},
			wantReasons: map[string]int{"has no node that fits": 1},
			wantNodes:   map[string]int{"is inactive": 1}},
		{name: "a node whose network is not ready is passed over, with its reason",
			clusters: []Cluster{{ID: "c1", Name: "edge", Active: true, Nodes: func() []Node {
				n1, n2 := mkNode("n1", 4000, 8192, 0, 0), mkNode("n2", 4000, 8192, 0, 0)
				n1.NotReady = "network: thk0 already holds 10.64.9.1/24"
				return []Node{n1, n2}
			}()}}, want: "c1/n2"},
		{name: "only not-ready nodes",
			clusters: []Cluster{{ID: "c1", Name: "edge", Active: true, Nodes: func() []Node {
				n := mkNode("n1", 4000, 8192, 0, 0)
				n.NotReady = "network: thk0 already holds 10.64.9.1/24"
				return []Node{n}
			}()}},
			wantReasons: map[string]int{"has no node that fits": 1},
			wantNodes:   map[string]int{"is not ready (network: thk0 already holds 10.64.9.1/24)": 1}},
		{name: "a cordoned node is passed over, even the emptiest",
			clusters: []Cluster{{ID: "c1", Name: "edge", Active: true, Nodes: func() []Node {
				n1, n2 := mkNode("n1", 4000, 8192, 0, 0), mkNode("n2", 4000, 8192, 3000, 4096)
				n1.Cordoned = true
				return []Node{n1, n2}
			}()}}, want: "c1/n2"},
		{name: "only cordoned nodes",
			clusters: []Cluster{{ID: "c1", Name: "edge", Active: true, Nodes: func() []Node {
				n1, n2 := mkNode("n1", 4000, 8192, 0, 0), mkNode("n2", 4000, 8192, 0, 0)
				n1.Cordoned, n2.Cordoned = true, true
				return []Node{n1, n2}
			}()}},
			wantReasons: map[string]int{"has no node that fits": 1},
			wantNodes:   map[string]int{"is cordoned": 2}},
		{name: "empty cluster",
			clusters:    []Cluster{{ID: "c1", Name: "edge", Active: true}},
			wantReasons: map[string]int{"has no nodes": 1}},
		{name: "direct cluster",
			clusters: []Cluster{
				{ID: "c1", Name: "edge", Active: true, Nodes: []Node{mkNode("n1", 4000, 8192, 3000, 0)}},
				{ID: "c2", Name: "gpu", Active: true, Nodes: gpuNodes},
			},
			constraints: []wire.Constraint{direct("gpu", "")}, want: "c2/xavier1"},
		{name: "direct cluster and node list: the list applies to that cluster's nodes",
			clusters: []Cluster{
				{ID: "c1", Name: "edge", Active: true, Nodes: []Node{mkNode("xavier2", 4000, 8192, 3000, 0)}},
				{ID: "c2", Name: "gpu", Active: true, Nodes: gpuNodes},
			},
			constraints: []wire.Constraint{direct("gpu", "xavier2")}, want: "c2/xavier2"},
		{name: "direct cluster whose listed node is full",
			clusters: []Cluster{
				{ID: "c1", Name: "edge", Active: true, Nodes: []Node{mkNode("n1", 4000, 8192, 0, 0)}},
				{ID: "c2", Name: "gpu", Active: true, Nodes: []Node{mkNode("xavier1", 4000, 8192, 0, 0), mkNode("xavier2", 4000, 8192, 4000, 0)}},
			},
			constraints: []wire.Constraint{direct("gpu", "xavier2")},
			wantReasons: map[string]int{"is not the direct constraint's cluster (gpu)": 1, "has no node that fits": 1},
			wantNodes:   map[string]int{"is not in the direct constraint's node list": 1, "lacks CPU (need 1 core, at most 0 cores free)": 1}},
		{name: "direct cluster that does not exist",
			clusters:    []Cluster{{ID: "c1", Name: "edge", Active: true, Nodes: []Node{mkNode("n1", 4000, 8192, 0, 0)}}},
			constraints: []wire.Constraint{direct("gpu", "")},
			wantReasons: map[string]int{"is not the direct constraint's cluster (gpu)": 1}},
		{name: "allowed list",
			clusters: []Cluster{
				{ID: "c1", Name: "edge", Active: true, Nodes: []Node{mkNode("n1", 4000, 8192, 3000, 0)}},
				{ID: "c2", Name: "core", Active: true, Nodes: []Node{mkNode("n2", 4000, 8192, 0, 0)}},
				{ID: "c3", Name: "far", Active: true, Nodes: []Node{mkNode("n3", 4000, 8192, 0, 0)}},
			},
			constraints: []wire.Constraint{allowed("core", "far")}, want: "c2/n2"},
		{name: "allowed list names no live cluster",
			clusters: []Cluster{
				{ID: "c1", Name: "edge", Active: true, Nodes: []Node{mkNode("n1", 4000, 8192, 0, 0)}},
				{ID: "c2", Name: "core", Active: false, Nodes: []Node{mkNode("n2", 4000, 8192, 0, 0)}},
			},
			constraints: []wire.Constraint{allowed("core")},
			wantReasons: map[string]int{"is inactive": 1, "is not in the clusters constraint's allowed list (core)": 1}},
		{name: "vgpu only on one cluster",
			clusters: []Cluster{
				{ID: "c1", Name: "edge", Active: true, Nodes: []Node{mkNode("n1", 4000, 8192, 0, 0)}},
				{ID: "c2", Name: "gpu", Active: true, Nodes: func() []Node {
					n := mkNode("g1", 4000, 8192, 0, 0)
					n.Capacity.VGPUs = 1
					return []Node{n}
				}()},
			},
			need: wire.Resources{MilliCPU: 1000, VGPUs: 1}, want: "c2/g1"},
		{name: "no clusters", wantReasons: map[string]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mkSpec(1000, 1024)
			if tt.need != (wire.Resources{}) {
				s.Resources = tt.need
			}
			s.Constraints = tt.constraints
			p, err := PickCluster(tt.clusters, s)
			if tt.want != "" {
				if err != nil || p.ClusterID+"/"+p.NodeName != tt.want {
					t.Fatalf("PickCluster = %+v, %v; want %s", p, err, tt.want)
				}
				return
			}
			var nf *NoFitError
			if !errors.As(err, &nf) || !errors.Is(err, ErrNoFit) {
				t.Fatalf("PickCluster = %+v, %v; want a NoFitError", p, err)
			}
			if nf.Kind != KindCluster || nf.Candidates != len(tt.clusters) || !maps.Equal(nf.Reasons, tt.wantReasons) ||
				!maps.Equal(nf.NodeReasons, tt.wantNodes) {
				t.Errorf("NoFitError = %+v\nwant reasons %v, node reasons %v", nf, tt.wantReasons, tt.wantNodes)
			}
			t.Log(err)
		})
	}
}

func TestNoFitErrorMessage(t *testing.T) {
	nodes := []Node{
		mkNode("a", 4000, 1024, 0, 768),
		mkNode("b", 4000, 1024, 0, 1000),
		mkNode("c", 4000, 8192, 0, 0),
		func() Node {
			n := mkNode("d", 4000, 8192, 0, 0)
			n.Virtualizations = append(n.Virtualizations, "unikernel")
			return n
		}(),
	}
	for i := range nodes[:2] {
		nodes[i].Virtualizations = []string{"container", "unikernel"}
	}
	s := mkSpec(1000, 512)
	s.Virtualization = "unikernel"
	s.Constraints = []wire.Constraint{direct("edge", "a;b;c")}
	_, err := PickNode("edge", nodes, s)
	const want = "no node fits: 2 lack memory (need 512 MB, at most 256 MB free), 1 does not run unikernel, 1 is not in the direct constraint's node list"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	var nf *NoFitError
	if !errors.As(err, &nf) || nf.Candidates != 4 || nf.Kind != KindNode {
		t.Fatalf("NoFitError = %+v", nf)
	}
	wantReasons := map[string]int{
		"lacks memory (need 512 MB, at most 256 MB free)": 2,
		"does not run unikernel":                          1,
		"is not in the direct constraint's node list":     1,
	}
	if !maps.Equal(nf.Reasons, wantReasons) {
		t.Errorf("Reasons = %v, want %v", nf.Reasons, wantReasons)
	}
}

func TestNoFitErrorRender(t *testing.T) {
	tests := []struct {
		err  NoFitError
		want string
	}{
		{NoFitError{}, "no node fits: there are no nodes"},
		{NoFitError{Kind: KindCluster}, "no cluster fits: there are no clusters"},
		{NoFitError{Kind: KindNode, Candidates: 5, Reasons: map[string]int{
			"is inactive": 2, "lacks CPU (need 2 cores, at most 1 core free)": 2, "is not arm64": 1}},
			"no node fits: 2 are inactive, 2 lack CPU (need 2 cores, at most 1 core free), 1 is not arm64"},
		{NoFitError{Kind: KindCluster, Candidates: 3, Reasons: map[string]int{"has no node that fits": 2, "is inactive": 1},
			Nodes: 7, NodeReasons: map[string]int{"does not run wasm": 5, "lacks vGPUs (need 1, at most 0 free)": 2}},
			"no cluster fits: 2 have no node that fits, 1 is inactive; their 7 nodes: 5 do not run wasm, 2 lack vGPUs (need 1, at most 0 free)"},
		{NoFitError{Kind: KindCluster, Candidates: 1, Reasons: map[string]int{"has no node that fits": 1},
			Nodes: 1, NodeReasons: map[string]int{"is not amd64 or arm64": 1}},
			"no cluster fits: 1 has no node that fits; their 1 node: 1 is not amd64 or arm64"},
		{NoFitError{Candidates: 2, Reasons: map[string]int{"melted": 2}}, "no node fits: 2 melted"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q\nwant      %q", got, tt.want)
		}
	}
}

func TestNoFitArchAndCPUReasons(t *testing.T) {
	arm := mkNode("pi", 4000, 8192, 0, 0)
	arm.Arch = "aarch64"
	nodes := []Node{arm, mkNode("busy", 2000, 8192, 1500, 0), mkNode("busier", 2000, 8192, 1900, 0)}
	s := mkSpec(1500, 100)
	s.Arch = []string{"amd64", "riscv64"}
	_, err := PickNode("edge", nodes, s)
	const want = "no node fits: 2 lack CPU (need 1.5 cores, at most 0.5 cores free), 1 is not amd64 or riscv64"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	_, err = PickNode("edge", nil, s)
	if err == nil || err.Error() != "no node fits: there are no nodes" {
		t.Fatalf("no nodes: err = %v", err)
	}
}

func TestPlaceAllNodes(t *testing.T) {
	// Each node has room for exactly one instance.
	nodes := []Node{mkNode("n1", 1000, 2048, 0, 0), mkNode("n2", 1000, 2048, 0, 0)}
	before := cloneNodes(nodes)
	specs := []wire.InstanceSpec{mkSpec(1000, 1024), mkSpec(1000, 1024), mkSpec(1000, 1024)}
	for i := range specs {
		specs[i].Key = wire.InstanceKey("svc", i)
	}
	res := PlaceAllNodes("edge", nodes, specs)
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	if res[0].Err != nil || res[1].Err != nil || res[0].Placement.NodeName != "n1" || res[1].Placement.NodeName != "n2" {
		t.Fatalf("results = %+v", res)
	}
	var nf *NoFitError
	if !errors.As(res[2].Err, &nf) || res[2].Placement != (Placement{}) {
		t.Fatalf("third = %+v, want a NoFitError", res[2])
	}
	if want := "no node fits: 2 lack CPU (need 1 core, at most 0 cores free)"; res[2].Err.Error() != want {
		t.Errorf("third err = %v, want %s", res[2].Err, want)
	}
	if !reflect.DeepEqual(nodes, before) {
		t.Errorf("caller's nodes changed: %+v", nodes)
	}
}

func TestPlaceAllNodesPacks(t *testing.T) {
	// Best fit fills one node before starting the next.
	nodes := []Node{mkNode("b", 2000, 4096, 0, 0), mkNode("a", 2000, 4096, 0, 0), mkNode("c", 8000, 4096, 0, 0)}
	specs := make([]wire.InstanceSpec, 4)
	for i := range specs {
		specs[i] = mkSpec(1000, 1024)
	}
	specs[2].Virtualization = "" // an invalid spec in the middle fails alone
	var got []string
	for _, r := range PlaceAllNodes("edge", nodes, specs) {
		if r.Err != nil {
			if !errors.Is(r.Err, ErrInvalidSpec) {
				t.Fatalf("unexpected error %v", r.Err)
			}
			got = append(got, "invalid")
			continue
		}
		got = append(got, r.Placement.NodeName)
	}
	if want := []string{"a", "a", "invalid", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("placements = %v, want %v", got, want)
	}
	if res := PlaceAllNodes("edge", nodes, nil); len(res) != 0 {
		t.Errorf("no specs: %v", res)
	}
}

func TestPlaceAllClusters(t *testing.T) {
	clusters := []Cluster{
		{ID: "c1", Name: "edge", Active: true, Nodes: []Node{mkNode("n1", 1000, 2048, 0, 0)}},
		{ID: "c2", Name: "core", Active: true, Nodes: []Node{mkNode("n2", 1000, 2048, 0, 0)}},
		{ID: "c3", Name: "off", Active: false, Nodes: []Node{mkNode("n3", 1000, 2048, 0, 0)}},
	}
	before := cloneClusters(clusters)
	specs := []wire.InstanceSpec{mkSpec(1000, 1024), mkSpec(1000, 1024), mkSpec(1000, 1024)}
	res := PlaceAllClusters(clusters, specs)
	if len(res) != 3 || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("results = %+v", res)
	}
	// Ties by cluster name: core first, then edge.
	if res[0].Placement != (Placement{ClusterID: "c2", NodeID: "id-n2", NodeName: "n2"}) ||
		res[1].Placement != (Placement{ClusterID: "c1", NodeID: "id-n1", NodeName: "n1"}) {
		t.Errorf("placements = %+v, %+v", res[0].Placement, res[1].Placement)
	}
	const want = "no cluster fits: 2 have no node that fits, 1 is inactive; their 2 nodes: 2 lack CPU (need 1 core, at most 0 cores free)"
	if !errors.Is(res[2].Err, ErrNoFit) || res[2].Err.Error() != want {
		t.Errorf("third err = %v\nwant %s", res[2].Err, want)
	}
	if !reflect.DeepEqual(clusters, before) {
		t.Errorf("caller's clusters changed: %+v", clusters)
	}
}

func TestPlaceAllClustersSameNode(t *testing.T) {
	// Reservations accumulate on the node that justified each placement.
	clusters := []Cluster{{ID: "c1", Name: "edge", Active: true, Nodes: []Node{mkNode("n1", 3000, 8192, 0, 0), mkNode("n2", 1000, 8192, 0, 0)}}}
	before := cloneClusters(clusters)
	specs := []wire.InstanceSpec{mkSpec(1000, 0), mkSpec(1000, 0), mkSpec(1000, 0), mkSpec(1000, 0), mkSpec(1000, 0)}
	var got []string
	for _, r := range PlaceAllClusters(clusters, specs) {
		if r.Err != nil {
			got = append(got, "none")
		} else {
			got = append(got, r.Placement.NodeName)
		}
	}
	if want := []string{"n2", "n1", "n1", "n1", "none"}; !reflect.DeepEqual(got, want) {
		t.Errorf("placements = %v, want %v", got, want)
	}
	if !reflect.DeepEqual(clusters, before) {
		t.Errorf("caller's clusters changed: %+v", clusters)
	}
}

func TestPickDoesNotModify(t *testing.T) {
	clusters := []Cluster{{ID: "c1", Name: "edge", Active: true, Nodes: []Node{mkNode("n1", 1000, 2048, 0, 0)}}}
	before := cloneClusters(clusters)
	s := mkSpec(500, 512)
	s.Arch = []string{"X86_64"}
	s.Constraints = []wire.Constraint{direct("edge", " n1 ;"), allowed("edge")}
	sBefore := cloneSpec(s)
	if _, err := PickCluster(clusters, s); err != nil {
		t.Fatal(err)
	}
	if _, err := PickNode("edge", clusters[0].Nodes, s); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(clusters, before) || !reflect.DeepEqual(s, sBefore) {
		t.Error("input changed")
	}
}

func cloneNodes(nodes []Node) []Node {
	out := make([]Node, len(nodes))
	for i, n := range nodes {
		n.Virtualizations = append([]string(nil), n.Virtualizations...)
		out[i] = n
	}
	return out
}

func cloneClusters(clusters []Cluster) []Cluster {
	out := make([]Cluster, len(clusters))
	for i, c := range clusters {
		c.Nodes = cloneNodes(c.Nodes)
		out[i] = c
	}
	return out
}

func cloneSpec(s wire.InstanceSpec) wire.InstanceSpec {
	s.Arch = append([]string(nil), s.Arch...)
	cs := make([]wire.Constraint, len(s.Constraints))
	for i, c := range s.Constraints {
		c.Allowed = append([]string(nil), c.Allowed...)
		cs[i] = c
	}
	s.Constraints = cs
	return s
}

func TestErrorsAreDistinct(t *testing.T) {
	if errors.Is(ErrInvalidSpec, ErrNoFit) || strings.Contains(ErrNoFit.Error(), "invalid") {
		t.Fatal("sentinels overlap")
	}
}
