package rootsync

import (
	"reflect"
	"slices"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

const (
	// usageEvery bounds how often a node's or an instance's usage figures
	// alone are reported again.
	usageEvery = 10 * time.Second
	// logsEvery bounds how often an instance's new log tail is sent: a
	// workload that prints all the time does not ride every sync.
	logsEvery = 5 * time.Second
	// syncBudget bounds the instance statuses of one delta sync, in bytes of
	// their text (a log tail is up to 8 KiB): whatever the workloads print,
	// a sync stays far below the root's body limit. What does not fit goes
	// in the next sync, at once; changes of state go before log tails, log
	// tails before usage figures.
	syncBudget = 256 << 10
)

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
	logsAt  time.Time // when its log tail last changed (statuses)
}

// bare is a status without usage figures and log tail: its state.
func bare(s wire.InstanceStatus) wire.InstanceStatus {
	s.CPUPercent, s.MemoryMB, s.Logs = 0, 0, ""
	if len(s.Jobs) == 0 {
		s.Jobs = nil
	}
	return s
}

// sameBare reports whether two statuses differ in nothing but usage and
// log tail (a status holds a slice, so == cannot say).
func sameBare(a, b wire.InstanceStatus) bool {
	return reflect.DeepEqual(bare(a), bare(b))
}

// size is what a status weighs against syncBudget.
func size(s wire.InstanceStatus) int {
	n := 200 + len(s.Key) + len(s.Detail) + len(s.Logs) + len(s.Node) + len(s.NodeID)
	for _, j := range s.Jobs {
		n += len(j) + 3
	}
	return n
}

// next builds the sync to send at now; more says that changes did not fit
// and wait for the next sync.
func (r *reported) next(nodes []wire.NodeInfo, statuses []wire.InstanceStatus, now time.Time) (req wire.ClusterSync, more bool) {
	req = wire.ClusterSync{Version: wire.Version, Delta: true, Epoch: r.epoch}
	if r.epoch == "" {
		// Everything, as the root holds nothing of ours; log tails only
		// within the budget (they follow in the deltas).
		req.Nodes, req.Instances = nodes, slices.Clone(statuses)
		if req.Nodes == nil {
			req.Nodes = []wire.NodeInfo{}
		}
		if req.Instances == nil {
			req.Instances = []wire.InstanceStatus{}
		}
		budget := syncBudget
		for i := range req.Instances {
			if budget -= size(req.Instances[i]); budget < 0 && req.Instances[i].Logs != "" {
				req.Instances[i].Logs, more = "", true
			}
		}
		return req, more
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
		usage := old.v.CPUPercent != n.CPUPercent || old.v.MemoryPercent != n.MemoryPercent ||
			!wire.SameCoordinate(old.v.Coordinate, n.Coordinate)
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
	var changed, tails, usages []wire.InstanceStatus
	for _, st := range statuses {
		old, ok := r.statuses[st.Key]
		if !ok {
			changed = append(changed, st)
			continue
		}
		tail := old.v.Logs != st.Logs
		if tail && now.Sub(old.logsAt) < logsEvery {
			st.Logs, tail = old.v.Logs, false // the new tail waits its turn
		}
		usage := old.v.CPUPercent != st.CPUPercent || old.v.MemoryMB != st.MemoryMB
		switch {
		case !sameBare(old.v, st):
			changed = append(changed, st)
		case tail:
			tails = append(tails, st)
		case usage && now.Sub(old.usageAt) >= usageEvery:
			usages = append(usages, st)
		}
	}
	budget := syncBudget
	for _, group := range [][]wire.InstanceStatus{changed, tails, usages} {
		for _, st := range group {
			if budget -= size(st); budget < 0 && len(req.Instances) > 0 {
				return req, true
			}
			req.Instances = append(req.Instances, st)
		}
	}
	return req, false
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
		r.nodes[n.ID] = sent[wire.NodeInfo]{v: n, usageAt: now}
	}
	for _, st := range req.Instances {
		logsAt := now
		if old, ok := r.statuses[st.Key]; ok && old.v.Logs == st.Logs {
			logsAt = old.logsAt
		}
		r.statuses[st.Key] = sent[wire.InstanceStatus]{st, now, logsAt}
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
