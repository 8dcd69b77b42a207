package scheduler

import (
	"slices"

	"github.com/thicket-edge/thicket/contract/wire"
)

// score ranks a feasible node for an instance needing need: best fit, the
// fuller the node after the placement the higher the score. It is the mean,
// over the node's dimensions, of (reserved + need) / capacity, each ratio
// clamped to [0, 1]. CPU and memory count when the node has capacity in
// them; vGPUs only when the node has some (an instance asking for vGPUs
// never reaches a node without them). So a node with idle vGPUs scores lower
// for work that needs none, and GPU nodes stay free for GPU work.
func score(n *wire.NodeInfo, need wire.Resources) float64 {
	var sum float64
	dims := 0
	if n.Capacity.MilliCPU > 0 {
		sum += ratio(n.Reserved.MilliCPU+need.MilliCPU, n.Capacity.MilliCPU)
		dims++
	}
	if n.Capacity.MemoryMB > 0 {
		sum += ratio(n.Reserved.MemoryMB+need.MemoryMB, n.Capacity.MemoryMB)
		dims++
	}
	if n.Capacity.VGPUs > 0 {
		sum += ratio(n.Reserved.VGPUs+need.VGPUs, n.Capacity.VGPUs)
		dims++
	}
	if dims == 0 {
		return 0
	}
	return sum / float64(dims)
}

func ratio(used, capacity int64) float64 {
	r := float64(used) / float64(capacity)
	switch {
	case r < 0:
		return 0
	case r > 1:
		return 1
	}
	return r
}

// betterNode reports whether node a with score sa ranks before node b with
// score sb: higher score, then smaller name, then smaller ID.
func betterNode(sa float64, a *wire.NodeInfo, sb float64, b *wire.NodeInfo) bool {
	if sa != sb {
		return sa > sb
	}
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	return a.ID < b.ID
}

// betterCluster reports whether cluster a, whose best node scores sa, ranks
// before cluster b, whose best node scores sb: higher score, then smaller
// name, then smaller ID.
func betterCluster(sa float64, a *Cluster, sb float64, b *Cluster) bool {
	if sa != sb {
		return sa > sb
	}
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	return a.ID < b.ID
}

// bestNode returns the index and score of the best feasible node, or -1.
func (r *request) bestNode(nodes []Node) (int, float64) {
	best := -1
	var bestScore float64
	for i := range nodes {
		n := &nodes[i].NodeInfo
		if r.checkNode(&nodes[i]) != fitOK {
			continue
		}
		s := score(n, r.need)
		if len(r.dist) > 0 {
			s = r.nearness(n, r.cluster) // the nearest wins, however full
		}
		if r.spec.Virtualization == "unikernel" && slices.Contains(n.Capabilities, wire.CapabilityKVM) {
			s += 1 // hardware acceleration outranks any fit
		}
		if best < 0 || betterNode(s, n, bestScore, &nodes[best].NodeInfo) {
			best, bestScore = i, s
		}
	}
	return best, bestScore
}
