package scheduler

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// benchNodes is a deterministic, mixed fleet: sizes from 2 to 16 cores,
// mostly amd64 container nodes, some arm, wasm and unikernel ones, a few
// inactive or with vGPUs, each 0-90 % reserved.
func benchNodes(rng *rand.Rand, prefix string, n int) []Node {
	nodes := make([]Node, n)
	archs := []string{"amd64", "amd64", "amd64", "x86_64", "arm64", "aarch64", "arm"}
	for i := range nodes {
		cores := int64(2) << rng.IntN(4) // 2, 4, 8, 16
		capacity := wire.Resources{MilliCPU: cores * 1000, MemoryMB: cores * 2048}
		if rng.IntN(20) == 0 {
			capacity.VGPUs = 2
		}
		fill := rng.Float64() * 0.9
		virt := []string{"container"}
		if rng.IntN(4) == 0 {
			virt = append(virt, "wasm")
		}
		if rng.IntN(10) == 0 {
			virt = append(virt, "unikernel")
		}
		name := prefix + "node" + strconv.Itoa(i)
		nodes[i] = Node{NodeInfo: wire.NodeInfo{
			ID:              "id-" + name,
			Name:            name,
			Arch:            archs[rng.IntN(len(archs))],
			Virtualizations: virt,
			Capacity:        capacity,
			Reserved: wire.Resources{
				MilliCPU: int64(fill * float64(capacity.MilliCPU)),
				MemoryMB: int64(fill * float64(capacity.MemoryMB)),
			},
			Active: rng.IntN(50) != 0,
		}}
	}
	return nodes
}

func benchClusters(rng *rand.Rand, clusters, nodesEach int) []Cluster {
	out := make([]Cluster, clusters)
	for i := range out {
		name := "cluster" + strconv.Itoa(i)
		out[i] = Cluster{ID: "id-" + name, Name: name, Active: rng.IntN(20) != 0, Nodes: benchNodes(rng, name+"-", nodesEach)}
	}
	return out
}

func benchSpec() wire.InstanceSpec {
	s := mkSpec(500, 512)
	s.Arch = []string{"amd64", "arm64"}
	return s
}

func reportPlacements(b *testing.B, perOp int) {
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "placements/s")
}

func benchPickNode(b *testing.B, n int) {
	nodes := benchNodes(rand.New(rand.NewPCG(1, uint64(n))), "", n)
	spec := benchSpec()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PickNode("edge", nodes, spec); err != nil {
			b.Fatal(err)
		}
	}
	reportPlacements(b, 1)
}

func BenchmarkPickNode1000(b *testing.B)  { benchPickNode(b, 1000) }
func BenchmarkPickNode10000(b *testing.B) { benchPickNode(b, 10000) }

// BenchmarkPickNodeNoFit1000 measures the failure path, which scans the
// nodes a second time to explain itself.
func BenchmarkPickNodeNoFit1000(b *testing.B) {
	nodes := benchNodes(rand.New(rand.NewPCG(1, 1000)), "", 1000)
	spec := benchSpec()
	spec.Resources.MemoryMB = 1 << 20
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PickNode("edge", nodes, spec); err == nil {
			b.Fatal("placed")
		}
	}
	reportPlacements(b, 1)
}

// BenchmarkPickNodeDirect1000 has a direct constraint listing ten nodes.
func BenchmarkPickNodeDirect1000(b *testing.B) {
	nodes := benchNodes(rand.New(rand.NewPCG(1, 1000)), "", 1000)
	spec := benchSpec()
	spec.Constraints = []wire.Constraint{direct("edge", "node1;node12;node123;node234;node345;node456;node567;node678;node789;node890")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PickNode("edge", nodes, spec); err != nil {
			b.Fatal(err)
		}
	}
	reportPlacements(b, 1)
}

func BenchmarkPickCluster(b *testing.B) {
	for _, size := range []struct{ clusters, nodes int }{{100, 10}, {1000, 10}} {
		b.Run(fmt.Sprintf("%dx%d", size.clusters, size.nodes), func(b *testing.B) {
			clusters := benchClusters(rand.New(rand.NewPCG(2, uint64(size.clusters))), size.clusters, size.nodes)
			spec := benchSpec()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := PickCluster(clusters, spec); err != nil {
					b.Fatal(err)
				}
			}
			reportPlacements(b, 1)
		})
	}
}

// benchSpecs are n instances of mixed sizes (0.25 to 2 cores, 256 MB to
// 2 GB), a few of them wasm.
func benchSpecs(rng *rand.Rand, n int) []wire.InstanceSpec {
	specs := make([]wire.InstanceSpec, n)
	for i := range specs {
		s := mkSpec(250<<rng.IntN(4), 256<<rng.IntN(4))
		if rng.IntN(10) == 0 {
			s.Virtualization = "wasm"
		}
		s.Key = wire.InstanceKey("svc", i)
		specs[i] = s
	}
	return specs
}

// BenchmarkPlaceAll1000 places 1,000 instances on 1,000 nodes, one after
// the other, each seeing the previous reservations.
func BenchmarkPlaceAll1000(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 1000))
	nodes := benchNodes(rng, "", 1000)
	specs := benchSpecs(rng, 1000)
	b.ReportAllocs()
	placed := 0
	for b.Loop() {
		placed = 0
		for _, r := range PlaceAllNodes("edge", nodes, specs) {
			if r.Err == nil {
				placed++
			}
		}
	}
	if placed < len(specs)*9/10 {
		b.Fatalf("only %d of %d placed", placed, len(specs))
	}
	reportPlacements(b, len(specs))
}

// BenchmarkPlaceAllClusters1000 places 1,000 instances at the root over
// 100 clusters of 10 nodes.
func BenchmarkPlaceAllClusters1000(b *testing.B) {
	rng := rand.New(rand.NewPCG(4, 1000))
	clusters := benchClusters(rng, 100, 10)
	specs := benchSpecs(rng, 1000)
	b.ReportAllocs()
	placed := 0
	for b.Loop() {
		placed = 0
		for _, r := range PlaceAllClusters(clusters, specs) {
			if r.Err == nil {
				placed++
			}
		}
	}
	if placed < len(specs)*9/10 {
		b.Fatalf("only %d of %d placed", placed, len(specs))
	}
	reportPlacements(b, len(specs))
}
