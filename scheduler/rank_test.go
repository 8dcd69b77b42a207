package scheduler

import (
	"math"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

func TestScore(t *testing.T) {
	tests := []struct {
		name                     string
		capacity, reserved, need wire.Resources
		want                     float64
	}{
		{"empty node, nothing asked", wire.Resources{MilliCPU: 4000, MemoryMB: 8192}, wire.Resources{}, wire.Resources{}, 0},
		{"half cpu, quarter memory", wire.Resources{MilliCPU: 4000, MemoryMB: 8192}, wire.Resources{MilliCPU: 1000}, wire.Resources{MilliCPU: 1000, MemoryMB: 2048}, (0.5 + 0.25) / 2},
		{"exactly full", wire.Resources{MilliCPU: 4000, MemoryMB: 8192}, wire.Resources{MilliCPU: 3000, MemoryMB: 4096}, wire.Resources{MilliCPU: 1000, MemoryMB: 4096}, 1},
		{"vgpus count when the node has some", wire.Resources{MilliCPU: 1000, MemoryMB: 1000, VGPUs: 2}, wire.Resources{}, wire.Resources{MilliCPU: 1000, MemoryMB: 1000, VGPUs: 1}, (1 + 1 + 0.5) / 3},
		{"idle vgpus lower the score", wire.Resources{MilliCPU: 1000, MemoryMB: 1000, VGPUs: 2}, wire.Resources{}, wire.Resources{MilliCPU: 1000, MemoryMB: 1000}, 2.0 / 3},
		{"no vgpus, none asked", wire.Resources{MilliCPU: 1000, MemoryMB: 1000}, wire.Resources{}, wire.Resources{MilliCPU: 1000, MemoryMB: 1000}, 1},
		{"overcommitted dimension counts as full", wire.Resources{MilliCPU: 1000, MemoryMB: 1000}, wire.Resources{MemoryMB: 3000}, wire.Resources{}, 0.5},
		{"cpu-less node scores on memory", wire.Resources{MemoryMB: 1000}, wire.Resources{}, wire.Resources{MemoryMB: 250}, 0.25},
		{"no capacity at all", wire.Resources{}, wire.Resources{}, wire.Resources{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := wire.NodeInfo{Capacity: tt.capacity, Reserved: tt.reserved}
			if got := score(&n, tt.need); math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("score = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPickNodeRanking(t *testing.T) {
	tests := []struct {
		name  string
		nodes []Node
		spec  wire.InstanceSpec
		want  string
	}{
		{"best fit picks the fuller node",
			[]Node{mkNode("empty", 4000, 8192, 0, 0), mkNode("half", 4000, 8192, 2000, 4096), mkNode("quarter", 4000, 8192, 1000, 2048)},
			mkSpec(1000, 1024), "half"},
		{"fullest node that still fits",
			[]Node{mkNode("empty", 4000, 8192, 0, 0), mkNode("half", 4000, 8192, 2000, 4096), mkNode("full", 4000, 8192, 3500, 8000)},
			mkSpec(1000, 1024), "half"},
		{"fit is relative to capacity",
			// Half a core of 2 left after placement is fuller than 3 of 8.
			[]Node{mkNode("big", 8000, 16384, 4000, 8192), mkNode("small", 2000, 4096, 500, 1024)},
			mkSpec(1000, 2048), "small"},
		{"ties by name", []Node{mkNode("b", 4000, 8192, 0, 0), mkNode("c", 4000, 8192, 0, 0), mkNode("a", 4000, 8192, 0, 0)},
			mkSpec(1000, 1024), "a"},
		{"infeasible nodes never win ties", []Node{func() Node { n := mkNode("a", 4000, 8192, 0, 0); n.Active = false; return n }(), mkNode("b", 4000, 8192, 0, 0)},
			mkSpec(1000, 1024), "b"},
		{"gpu node kept for gpu work", []Node{func() Node { n := mkNode("gpu", 4000, 8192, 0, 0); n.Capacity.VGPUs = 2; return n }(), mkNode("plain", 4000, 8192, 0, 0)},
			mkSpec(1000, 1024), "plain"},
		{"gpu work goes to the gpu node", []Node{func() Node { n := mkNode("gpu", 4000, 8192, 0, 0); n.Capacity.VGPUs = 2; return n }(), mkNode("plain", 4000, 8192, 3000, 7168)},
			func() wire.InstanceSpec { s := mkSpec(1000, 1024); s.Resources.VGPUs = 1; return s }(), "gpu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every rotation of the input gives the same answer.
			for rot := range tt.nodes {
				nodes := append(append([]Node(nil), tt.nodes[rot:]...), tt.nodes[:rot]...)
				p, err := PickNode("c", nodes, tt.spec)
				if err != nil || p.NodeName != tt.want {
					t.Fatalf("rotation %d: PickNode = %+v, %v; want %s", rot, p, err, tt.want)
				}
			}
		})
	}
}

func TestTieBreakByID(t *testing.T) {
	a, b := mkNode("same", 4000, 8192, 0, 0), mkNode("same", 4000, 8192, 0, 0)
	a.ID, b.ID = "id-2", "id-1"
	for _, nodes := range [][]Node{{a, b}, {b, a}} {
		p, err := PickNode("c", nodes, mkSpec(100, 100))
		if err != nil || p.NodeID != "id-1" {
			t.Fatalf("PickNode = %+v, %v; want id-1", p, err)
		}
	}
}

func TestPickClusterRanking(t *testing.T) {
	tests := []struct {
		name     string
		clusters []Cluster
		want     string // cluster ID + "/" + node name
	}{
		{"cluster with the fullest fitting node",
			[]Cluster{
				{ID: "c1", Name: "alpha", Active: true, Nodes: []Node{mkNode("a1", 4000, 8192, 0, 0), mkNode("a2", 4000, 8192, 1000, 1024)}},
				{ID: "c2", Name: "beta", Active: true, Nodes: []Node{mkNode("b1", 4000, 8192, 2000, 4096)}},
			}, "c2/b1"},
		{"a full cluster's node does not count",
			[]Cluster{
				{ID: "c1", Name: "alpha", Active: true, Nodes: []Node{mkNode("a1", 4000, 8192, 0, 0)}},
				{ID: "c2", Name: "beta", Active: true, Nodes: []Node{mkNode("b1", 4000, 8192, 3900, 8000)}},
			}, "c1/a1"},
		{"ties by cluster name",
			[]Cluster{
				{ID: "c1", Name: "zeta", Active: true, Nodes: []Node{mkNode("a", 4000, 8192, 0, 0)}},
				{ID: "c2", Name: "eta", Active: true, Nodes: []Node{mkNode("z", 4000, 8192, 0, 0)}},
			}, "c2/z"},
		{"ties by cluster ID",
			[]Cluster{
				{ID: "c9", Name: "same", Active: true, Nodes: []Node{mkNode("a", 4000, 8192, 0, 0)}},
				{ID: "c3", Name: "same", Active: true, Nodes: []Node{mkNode("b", 4000, 8192, 0, 0)}},
			}, "c3/b"},
		{"best node within the cluster",
			[]Cluster{
				{ID: "c1", Name: "alpha", Active: true, Nodes: []Node{mkNode("a1", 4000, 8192, 0, 0), mkNode("a2", 4000, 8192, 1000, 1024), mkNode("a3", 4000, 8192, 4000, 0)}},
			}, "c1/a2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for rot := range tt.clusters {
				clusters := append(append([]Cluster(nil), tt.clusters[rot:]...), tt.clusters[:rot]...)
				p, err := PickCluster(clusters, mkSpec(1000, 1024))
				if err != nil || p.ClusterID+"/"+p.NodeName != tt.want || p.NodeID != "id-"+p.NodeName {
					t.Fatalf("rotation %d: PickCluster = %+v, %v; want %s", rot, p, err, tt.want)
				}
			}
		})
	}
}
