package manager

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/scheduler/jobs"
)

// Collaborative workloads: the cluster shares each service's job list
// among the service's instances (the root keeps all of them in this
// cluster). At every pass it advances each service's handover
// (jobs.Step) from what it knows now: which instances run on active nodes
// (Live), the grant version each instance's node reports applied (its
// acknowledgement), and how long the copies on silent nodes may still run
// what they hold (their lease, which their nodes enforce on their own).
// It stores the ledger before it publishes the grants made from it, and
// sends each instance its grant in its node's desired set.

var mJobsUnowned = promauto.NewGaugeVec(prometheus.GaugeOpts{
	Namespace: "thicket_cluster", Name: "jobs_unowned",
	Help: "Jobs of a service's list that no instance may run now (none is live, or the job is being handed over), by service.",
}, []string{"service"})

// leaseMargin is added to a silent node's lease before its jobs go to
// another instance: the node counts its lease from the last exchange with
// the broker, which may be a little later than the last report the
// manager got, and its instances need a moment to drop a job.
const leaseMargin = 5 * time.Second

// JobStore is what the manager keeps of the job handovers: a service's
// ledger, written before the grants made from it are published.
type JobStore interface {
	JobLedgers(ctx context.Context) (map[string]jobs.Ledger, error)
	SaveJobLedger(ctx context.Context, serviceID string, l *jobs.Ledger) error
}

// jobState is the manager's share of collaborative workloads; guarded by
// the manager's mu.
type jobState struct {
	ledgers map[string]jobs.Ledger // by service id
	// ledgerDirty: ledgers to write (absent from ledgers: delete).
	ledgerDirty map[string]bool
	// grants: what each instance's desired set carries, by key.
	grants map[string]wire.JobGrant
	// acks: the grant version each instance's node reported applied.
	acks map[string]int64
}

func (j *jobState) init(ledgers map[string]jobs.Ledger) {
	j.ledgers, j.ledgerDirty = ledgers, map[string]bool{}
	j.grants, j.acks = map[string]wire.JobGrant{}, map[string]int64{}
	if j.ledgers == nil {
		j.ledgers = map[string]jobs.Ledger{}
	}
}

// leaseOf is a spec's job lease.
func leaseOf(sp *wire.InstanceSpec) time.Duration {
	if sp.JobsLease > 0 {
		return time.Duration(sp.JobsLease) * time.Second
	}
	return sla.DefaultJobsLease * time.Second
}

// memberID names an instance in its pool: its number, which a restart or
// a move to another node keeps, so that its jobs stay with it.
func memberID(n int) string { return strconv.Itoa(n) }

// stepJobs advances every service's handover and marks the nodes whose
// instances' grants changed. Caller holds mu.
func (m *Manager) stepJobs(now time.Time) {
	type pool struct {
		ins     []*state.Instance
		list    []string
		lease   time.Duration
		removed []jobs.State // copies taken from nodes that may still run
	}
	pools := map[string]*pool{}
	get := func(svc string) *pool {
		p := pools[svc]
		if p == nil {
			p = &pool{lease: sla.DefaultJobsLease * time.Second}
			pools[svc] = p
		}
		return p
	}
	for _, in := range m.instances {
		if len(in.Spec.Jobs) == 0 {
			if _, had := m.jobs.ledgers[in.Spec.ServiceID]; !had {
				continue
			}
		}
		p := get(in.Spec.ServiceID)
		p.ins = append(p.ins, in)
		// The root sends every instance the same list; the lowest key's
		// is taken should a delta be half applied.
		if len(p.ins) == 1 || in.Key < p.ins[0].Key {
			p.list, p.lease = in.Spec.Jobs, leaseOf(&in.Spec)
		}
	}
	for svc := range m.jobs.ledgers {
		get(svc)
	}
	// Instances the root removed that a node may still be stopping: they
	// hold their jobs until the node applied the removal, or its lease
	// ran out.
	for nodeID, keys := range m.removedFrom {
		for key := range keys {
			if _, ok := m.instances[key]; ok {
				continue // moved (its copy there got an empty grant)
			}
			svc, n, err := wire.ParseInstanceKey(key)
			if err != nil || pools[svc] == nil {
				continue
			}
			p := pools[svc]
			p.removed = append(p.removed, jobs.State{Member: jobs.Member{ID: memberID(n)},
				LeaseUntil: m.leaseOfNode(nodeID, now, p.lease)})
		}
	}
	for svc, p := range pools {
		members := make([]jobs.State, 0, len(p.ins)+len(p.removed))
		size := 0
		for _, in := range p.ins {
			if finished(in) {
				continue
			}
			size++
			members = append(members, m.memberState(in, now, p.lease))
		}
		members = append(members, p.removed...)
		old := m.jobs.ledgers[svc]
		res := jobs.Step(old, p.list, members, now)
		if !sameLedger(old, res.Ledger) {
			m.jobs.ledgers[svc] = res.Ledger
			m.jobs.ledgerDirty[svc] = true
		}
		if len(p.ins) == 0 && len(res.Ledger.Holders) == 0 {
			delete(m.jobs.ledgers, svc) // nothing left to hand over
			m.jobs.ledgerDirty[svc] = true
			mJobsUnowned.DeleteLabelValues(svc)
			continue
		}
		mJobsUnowned.WithLabelValues(svc).Set(float64(len(res.Unowned)))
		for _, in := range p.ins {
			gr := res.Grants[memberID(in.Spec.InstanceNumber)]
			g := wire.JobGrant{Version: gr.Version, Jobs: gr.Jobs, LeaseS: int(p.lease / time.Second), PoolSize: size}
			if g.Jobs == nil {
				g.Jobs = []string{}
			}
			if old, ok := m.jobs.grants[in.Key]; ok && sameGrant(old, g) {
				continue
			}
			m.jobs.grants[in.Key] = g
			if in.NodeID != "" {
				m.dirtyNode[in.NodeID] = true
			}
			if in.LostFrom != "" {
				m.dirtyNode[in.LostFrom] = true
			}
		}
	}
	for key := range m.jobs.grants {
		if _, ok := m.instances[key]; !ok {
			delete(m.jobs.grants, key)
			delete(m.jobs.acks, key)
		}
	}
}

// memberState is what the handover knows of an instance now. Caller holds
// mu.
func (m *Manager) memberState(in *state.Instance, now time.Time, lease time.Duration) jobs.State {
	st := jobs.State{Member: jobs.Member{ID: memberID(in.Spec.InstanceNumber), Weight: 1}, Acked: m.jobs.acks[in.Key]}
	if in.LostFrom != "" {
		// A copy may still run on the lost node with what it held: until
		// that node's lease ran out, the instance holds its jobs and gets
		// no new ones (its replacement is no second owner). After it, that
		// copy has dropped them (and is sent none, see nodeSpec): the
		// replacement counts.
		// Acknowledgements come from the replacement, not from that copy:
		// they release nothing of what it holds.
		if until := m.leaseOfNode(in.LostFrom, now, lease); now.Before(until) {
			st.LeaseUntil, st.Acked = until, 0
			return st
		}
	}
	if in.NodeID == "" {
		return st // runs nowhere
	}
	st.LeaseUntil = m.leaseOfNode(in.NodeID, now, lease)
	if n := m.nodes[in.NodeID]; n != nil && n.active {
		st.Live = in.Status.Status == wire.StatusRunning
	}
	return st
}

// leaseOfNode is until when a copy on node id may still run what it holds:
// on an active node until it acknowledges (never by itself), on a silent
// one until its lease, counted from its last report, ran out. Caller holds
// mu.
func (m *Manager) leaseOfNode(id string, now time.Time, lease time.Duration) time.Time {
	n := m.nodes[id]
	switch {
	case n == nil && !m.deletedAt[id].IsZero():
		return m.deletedAt[id].Add(lease + leaseMargin) // an admin deleted it: cut off since
	case n == nil:
		return time.Time{} // forgotten: runs nothing of ours
	case n.active:
		return now.Add(lease + leaseMargin)
	default:
		return n.lastSeen.Add(lease + leaseMargin)
	}
}

func sameLedger(a, b jobs.Ledger) bool {
	return a.Version == b.Version && maps.Equal(a.Holders, b.Holders) && maps.Equal(a.Revoked, b.Revoked)
}

func sameGrant(a, b wire.JobGrant) bool {
	return a.Version == b.Version && a.LeaseS == b.LeaseS && a.PoolSize == b.PoolSize && slices.Equal(a.Jobs, b.Jobs)
}

// nodeSpec is an instance's spec as its node gets it: without the job
// list (the node needs only the grant), with its grant; a copy on a node
// it was taken from (lostCopy) gets an empty one. Caller holds mu.
func (m *Manager) nodeSpec(in *state.Instance, lostCopy bool) wire.InstanceSpec {
	sp := in.Running()
	sp.Jobs, sp.JobsLease = nil, 0
	if sp.OneShot && finished(in) {
		sp.Ended = in.Status.Status // never started again
	}
	if g, ok := m.jobs.grants[in.Key]; ok {
		if lostCopy {
			g.Jobs = []string{}
		}
		sp.JobGrant = &g
	}
	return sp
}

// ack records the grant version an instance's node reports applied and
// says whether it changed. A version beyond what was granted is not
// believed. Caller holds mu.
func (m *Manager) ack(key string, version int64) bool {
	g, ok := m.jobs.grants[key]
	if !ok || version > g.Version || version == m.jobs.acks[key] {
		return false
	}
	m.jobs.acks[key] = version
	return true
}

// takeDirtyLedgers returns the ledgers to write (nil: delete). Caller
// holds mu.
func (m *Manager) takeDirtyLedgers() map[string]*jobs.Ledger {
	if len(m.jobs.ledgerDirty) == 0 {
		return nil
	}
	out := make(map[string]*jobs.Ledger, len(m.jobs.ledgerDirty))
	for svc := range m.jobs.ledgerDirty {
		if l, ok := m.jobs.ledgers[svc]; ok {
			out[svc] = &l
		} else {
			out[svc] = nil
		}
	}
	clear(m.jobs.ledgerDirty)
	return out
}

// saveLedgers writes ledgers; what fails is marked to write again.
func (m *Manager) saveLedgers(ctx context.Context, ls map[string]*jobs.Ledger) error {
	var failed []string
	var first error
	for svc, l := range ls {
		if err := m.st.SaveJobLedger(ctx, svc, l); err != nil {
			failed = append(failed, svc)
			if first == nil {
				first = err
			}
		}
	}
	if len(failed) == 0 {
		return nil
	}
	m.mu.Lock()
	for _, svc := range failed {
		m.jobs.ledgerDirty[svc] = true
	}
	m.mu.Unlock()
	return fmt.Errorf("save job ledgers of %d services: %w", len(failed), first)
}
