// Package dispatch is the root's scheduling loop: it releases the instances
// of clusters that went silent and places every instance without a cluster
// with the pure root scheduler, over the clusters' reported nodes.
package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/scheduler"
)

var (
	placements = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "thicket_root", Name: "placements_total",
		Help: "Instances the root scheduler placed on a cluster (result=placed) or could not place (result=no_capacity).",
	}, []string{"result"})
	released = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "thicket_root", Name: "instances_released_total",
		Help: "UNKNOWN instances of silent clusters handed to the scheduler for a replacement, as their services' disconnect policies say.",
	})
)

// Dispatcher runs the loop.
type Dispatcher struct {
	st    *state.Store
	log   *slog.Logger
	grace time.Duration
	every time.Duration
	live  *liveness
}

// New returns a dispatcher. A cluster silent for longer than grace loses its
// instances to other clusters.
func New(st *state.Store, grace time.Duration, log *slog.Logger) *Dispatcher {
	every := time.Second
	return &Dispatcher{st: st, log: log, grace: grace, every: every, live: newLiveness(grace, every)}
}

// tombstoneAge is how long removals are remembered for desired-set deltas
// (a cluster that holds an older generation gets its full set) and listed
// in full sets as explicit removals (see the cluster's hold).
const tombstoneAge = 30 * time.Minute

// Run judges liveness once a second and places waiting instances as soon as
// a write leaves any (a new instance, one handed back, a lost cluster's),
// until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	t := time.NewTicker(d.every)
	defer t.Stop()
	all := true
	for {
		_, changed := d.st.Changed()
		var err error
		if all {
			err = d.Pass(ctx)
		} else {
			err = d.place(d.st.Snapshot().Fresh())
		}
		if err != nil && ctx.Err() == nil {
			d.log.Warn("scheduling pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C: // liveness, and a retry of everything that waits
			if err := d.Liveness(time.Now()); err != nil && ctx.Err() == nil {
				d.log.Warn("liveness pass failed", "err", err)
			}
			d.st.PruneTombstones(tombstoneAge)
			// OAM workflows: the next step starts once the one before runs.
			if _, err := d.st.AdvanceWorkflows(); err != nil && ctx.Err() == nil {
				d.log.Warn("advancing OAM workflows failed", "err", err)
			}
			all = true
		case <-changed: // new instances (or handed back): only those
			if !d.st.Snapshot().HasFresh() {
				continue
			}
			all = false
			// Let a burst of requests gather into one batch.
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// Liveness declares the clusters silent for longer than the grace lost:
// their instances become UNKNOWN, and those whose services replace them go
// back to the root scheduler when their policy says.
func (d *Dispatcher) Liveness(now time.Time) error {
	clusters := d.st.Snapshot().Clusters()
	obs := make([]Observed, len(clusters))
	for i, c := range clusters {
		obs[i] = Observed{ID: c.ID, Active: c.Active, LastSeen: c.LastSeen}
	}
	silent, paused := d.live.observe(now, obs)
	if paused > 0 {
		d.log.Warn("this root did not run for a while; every cluster gets a fresh grace", "paused", paused.Round(time.Millisecond))
	}
	for _, o := range silent {
		i := slices.IndexFunc(clusters, func(c *state.Cluster) bool { return c.ID == o.ID })
		c := clusters[i]
		lost, n, err := d.st.LoseCluster(c.ID, o.LastSeen, fmt.Sprintf("cluster %s silent for more than %s", c.Name, d.grace))
		if err != nil {
			return err
		}
		if !lost {
			continue // it synced meanwhile
		}
		d.log.Warn("cluster lost; its instances are UNKNOWN", "cluster", c.Name, "instances", n)
	}
	n, err := d.st.ReplaceUnknown(time.Now())
	if err != nil {
		return err
	}
	if n > 0 {
		released.Add(float64(n))
		d.log.Warn("replacing instances of lost clusters elsewhere", "instances", n)
	}
	return nil
}

// Pass places every waiting instance, in one batch, over the clusters'
// nodes as reported plus what earlier passes assigned and the clusters have
// not placed yet.
func (d *Dispatcher) Pass(context.Context) error {
	return d.place(d.st.Snapshot().Waiting())
}

// place places pending instances: those whose latency constraints name a
// service after the others, so that they see where the others went.
func (d *Dispatcher) place(pending []state.Pending) error {
	var plain, near []state.Pending
	for _, p := range pending {
		if p.Spec.NamesService() {
			near = append(near, p)
		} else {
			plain = append(plain, p)
		}
	}
	if err := d.placeBatch(plain); err != nil {
		return err
	}
	return d.placeBatch(near)
}

// placeBatch places pending instances in one batch.
func (d *Dispatcher) placeBatch(pending []state.Pending) error {
	if len(pending) == 0 {
		return nil
	}
	sn := d.st.Snapshot()
	clusters := sn.Clusters()
	withServices := len(pending) > 0 && pending[0].Spec.NamesService() // see place
	snap := make([]scheduler.Cluster, 0, len(clusters))
	for _, c := range clusters {
		infos := sn.SchedulingNodes(c.ID)
		nodes := make([]scheduler.Node, len(infos))
		var services map[string][]string
		for i, n := range infos {
			if n.Location == "" {
				n.Location = c.Location // geo constraints: a node is where its cluster is
			}
			nodes[i] = scheduler.Node{NodeInfo: n, Cordoned: c.NodeMode(n.ID) != state.Schedulable}
			if withServices && n.Coordinate != nil { // only measured nodes can be latency targets
				if services == nil {
					services = sn.NodeServices(c.ID)
				}
				nodes[i].Services = services[n.ID]
			}
		}
		snap = append(snap, scheduler.Cluster{ID: c.ID, Name: c.Name, Active: c.Active, Nodes: nodes})
	}
	specs, from, deferred := onePool(sn, pending)
	results := scheduler.PlaceAllClusters(snap, specs)
	as := make([]state.Assignment, len(results), len(pending))
	for i, r := range results {
		as[i] = state.Assignment{Key: specs[i].Key}
		if r.Err != nil {
			as[i].Reason = r.Err.Error()
			if len(clusters) == 0 {
				as[i].Reason = "no cluster has joined the root"
			}
			placements.WithLabelValues("no_capacity").Inc()
			continue
		}
		as[i].ClusterID, as[i].NodeID = r.Placement.ClusterID, r.Placement.NodeID
		placements.WithLabelValues("placed").Inc()
	}
	// An instance deferred behind its pool's first fails as that one did;
	// else it waits for the next pass, which then knows the pool's cluster.
	at := make(map[int]int, len(from))
	for i, p := range from {
		at[p] = i
	}
	for p, leader := range deferred {
		if a := as[at[leader]]; a.ClusterID == "" {
			as = append(as, state.Assignment{Key: pending[p].Spec.Key, Reason: a.Reason})
		}
	}
	_, err := d.st.Assign(as)
	return err
}
