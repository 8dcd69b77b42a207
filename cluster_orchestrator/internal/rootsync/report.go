package rootsync

import (
	"slices"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// usageEvery bounds how often a node's or an instance's usage figures alone
// are reported again.
const usageEvery = 10 * time.Second

// reported is what the root acknowledged of this cluster: the last nodes and
// statuses it took, under its epoch. A sync sends the difference: what is new
// or changed (usage figures alone at most every usageEvery) and the nodes that
// left. An empty epoch means the root holds nothing of ours: send everything.
type reported struct {
	epoch    string
	nodes    map[string]sent[wire.NodeInfo]
	statuses map[string]sent[wire.InstanceStatus]
}

type sent[T any] struct {
	v       T
	usageAt time.Time // when its usage figures were last sent
}

func statusWithoutUsage(s wire.InstanceStatus) wire.InstanceStatus {
	s.CPUPercent, s.MemoryMB = 0, 0
	return s
}

// next builds the sync to send at now.
func (r *reported) next(nodes []wire.NodeInfo, statuses []wire.InstanceStatus, now time.Time) wire.ClusterSync {
	req := wire.ClusterSync{Version: wire.Version, Delta: true, Epoch: r.epoch}
	if r.epoch == "" {
		req.Nodes, req.Instances = nodes, statuses
		if req.Nodes == nil {
			req.Nodes = []wire.NodeInfo{}
		}
		if req.Instances == nil {
			req.Instances = []wire.InstanceStatus{}
		}
		return req
	}
	req.Nodes, req.Instances = []wire.NodeInfo{}, []wire.InstanceStatus{}
	present := make(map[string]bool, len(statuses))
	for _, st := range statuses {
		present[st.Key] = true
	}
	r.forget(present)
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		seen[n.ID] = true
		old, ok := r.nodes[n.ID]
		usage := old.v.CPUPercent != n.CPUPercent || old.v.MemoryPercent != n.MemoryPercent
		if !ok || !old.v.SameBut(n) || usage && now.Sub(old.usageAt) >= usageEvery {
			req.Nodes = append(req.Nodes, n)
		}
	}
	for id := range r.nodes {
		if !seen[id] {
			req.GoneNodes = append(req.GoneNodes, id)
		}
	}
	slices.Sort(req.GoneNodes)
	for _, st := range statuses {
		old, ok := r.statuses[st.Key]
		usage := old.v.CPUPercent != st.CPUPercent || old.v.MemoryMB != st.MemoryMB
		if !ok || statusWithoutUsage(old.v) != statusWithoutUsage(st) || usage && now.Sub(old.usageAt) >= usageEvery {
			req.Instances = append(req.Instances, st)
		}
	}
	return req
}

// acked records that the root took req under epoch at now. Statuses the
// cluster no longer reports are forgotten, so that they are sent again
// should they come back.
func (r *reported) acked(req wire.ClusterSync, epoch string, now time.Time) {
	if r.epoch != epoch || req.Epoch == "" {
		r.nodes = map[string]sent[wire.NodeInfo]{}
		r.statuses = map[string]sent[wire.InstanceStatus]{}
		r.epoch = epoch
	}
	for _, id := range req.GoneNodes {
		delete(r.nodes, id)
	}
	for _, n := range req.Nodes {
		r.nodes[n.ID] = sent[wire.NodeInfo]{n, now}
	}
	for _, st := range req.Instances {
		r.statuses[st.Key] = sent[wire.InstanceStatus]{st, now}
	}
}

// forget drops the statuses of instances the cluster no longer runs.
func (r *reported) forget(keep map[string]bool) {
	for k := range r.statuses {
		if !keep[k] {
			delete(r.statuses, k)
		}
	}
}
