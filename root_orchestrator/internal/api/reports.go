package api

import (
	"encoding/json"
	"hash/fnv"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

const (
	// metricsEvery is how often a running instance's CPU and memory figures
	// are stored when nothing else about it changed.
	metricsEvery = 10 * time.Second
	// rewriteEvery bounds how long the root trusts its memory of a status:
	// after that it is written again even if unchanged, so any divergence
	// between this memory and the store heals by itself.
	rewriteEvery = 30 * time.Second
)

// reportFilter remembers, per cluster, the instance statuses the root last
// stored, so that a cluster's sync (every second, with every instance it
// runs) writes only what changed: a new state, detail, node, address,
// restart count or log tail at once; usage figures at most every
// metricsEvery. Without it the root rewrote every instance every second,
// which made it the bottleneck of a large system.
//
// It does the same for the cluster's node list, stored whole (a document of
// about 1 MB at 2,000 nodes): written again when a node joined, left, changed
// liveness, capacity, reservations or network, and for usage figures and
// last-seen times at most every metricsEvery.
type reportFilter struct {
	mu       sync.Mutex
	clusters map[string]map[string]storedReport
	nodes    map[string]storedNodes
}

type storedNodes struct {
	sum uint64    // fingerprint of the node list without usage and last-seen times
	at  time.Time // when it was written
}

type storedReport struct {
	state     wire.InstanceStatus // without the usage figures
	cpu       float64
	memoryMB  int64
	stateAt   time.Time // when the state was last written
	metricsAt time.Time // when the usage figures were last written
}

func newReportFilter() *reportFilter {
	return &reportFilter{clusters: map[string]map[string]storedReport{}, nodes: map[string]storedNodes{}}
}

// withoutUsage is a status with its usage figures cleared.
func withoutUsage(st wire.InstanceStatus) wire.InstanceStatus {
	st.CPUPercent, st.MemoryMB = 0, 0
	return st
}

// changed returns the statuses of a cluster's report that must be written
// at now. It also forgets the instances the cluster no longer reports.
func (f *reportFilter) changed(cluster string, report []wire.InstanceStatus, now time.Time) []wire.InstanceStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	prev := f.clusters[cluster]
	next := make(map[string]storedReport, len(report))
	var out []wire.InstanceStatus
	for _, st := range report {
		old, ok := prev[st.Key]
		switch {
		case !ok,
			// NO_CAPACITY hands the instance back to the root scheduler:
			// always written, never remembered.
			st.Status == wire.StatusNoCapacity,
			old.state != withoutUsage(st),
			now.Sub(old.stateAt) >= rewriteEvery,
			(old.cpu != st.CPUPercent || old.memoryMB != st.MemoryMB) && now.Sub(old.metricsAt) >= metricsEvery:
			out = append(out, st)
		}
		if ok {
			next[st.Key] = old
		}
	}
	f.clusters[cluster] = next
	return out
}

// stored records statuses that were written at now.
func (f *reportFilter) stored(cluster string, written []wire.InstanceStatus, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.clusters[cluster]
	if m == nil {
		m = map[string]storedReport{}
		f.clusters[cluster] = m
	}
	for _, st := range written {
		if st.Status == wire.StatusNoCapacity {
			delete(m, st.Key)
			continue
		}
		m[st.Key] = storedReport{state: withoutUsage(st), cpu: st.CPUPercent, memoryMB: st.MemoryMB, stateAt: now, metricsAt: now}
	}
}

// nodesSum fingerprints a node list without what changes on every report.
func nodesSum(nodes []wire.NodeInfo) uint64 {
	h := fnv.New64a()
	enc := json.NewEncoder(h)
	for _, n := range nodes {
		n.CPUPercent, n.MemoryPercent, n.LastSeen = 0, 0, time.Time{}
		_ = enc.Encode(n)
	}
	return h.Sum64()
}

// nodesChanged reports whether a cluster's node list must be written at
// now, and the fingerprint to hand to nodesStored once it was.
func (f *reportFilter) nodesChanged(cluster string, nodes []wire.NodeInfo, now time.Time) (bool, uint64) {
	sum := nodesSum(nodes)
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.nodes[cluster]
	return !ok || old.sum != sum || now.Sub(old.at) >= metricsEvery, sum
}

// nodesStored records that a cluster's node list with this fingerprint was
// written at now.
func (f *reportFilter) nodesStored(cluster string, sum uint64, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[cluster] = storedNodes{sum: sum, at: now}
}

// forget drops what the root remembers of a cluster's statuses and nodes, so
// that its next report is written in full: after a failed write, and when
// the cluster was inactive (the root may have taken its instances meanwhile).
func (f *reportFilter) forget(cluster string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.clusters, cluster)
	delete(f.nodes, cluster)
}
