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
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
	"github.com/thicket-edge/thicket/scheduler"
)

var (
	placements = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "thicket_root", Name: "placements_total",
		Help: "Instances the root scheduler placed on a cluster (result=placed) or could not place (result=no_capacity).",
	}, []string{"result"})
	released = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "thicket_root", Name: "instances_released_total",
		Help: "Instances taken from clusters that went silent, to be placed elsewhere.",
	})
)

// Dispatcher runs the loop.
type Dispatcher struct {
	st    *store.Store
	log   *slog.Logger
	grace time.Duration
	every time.Duration
	kick  chan struct{}
	// changed is told when assignments changed (clusters wait for that).
	changed func()
	live    *liveness
}

// New returns a dispatcher. A cluster silent for longer than grace loses its
// instances to other clusters.
func New(st *store.Store, grace time.Duration, log *slog.Logger) *Dispatcher {
	every := time.Second
	return &Dispatcher{st: st, log: log, grace: grace, every: every, kick: make(chan struct{}, 1), changed: func() {},
		live: newLiveness(grace, every)}
}

// OnChange sets what to call when assignments changed.
func (d *Dispatcher) OnChange(f func()) { d.changed = f }

// Kick asks for a pass now (an instance was requested or released).
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run passes once a second, and at once when kicked, until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	t := time.NewTicker(d.every)
	defer t.Stop()
	for {
		if err := d.Pass(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("scheduling pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.kick:
		}
	}
}

// Pass does one round: silent clusters, then pending instances.
func (d *Dispatcher) Pass(ctx context.Context) error {
	clusters, err := d.st.ClusterRecords(ctx)
	if err != nil {
		return err
	}
	obs := make([]Observed, len(clusters))
	for i, c := range clusters {
		obs[i] = Observed{ID: c.ID, Active: c.Active, LastSeen: c.LastSeen}
	}
	silent, paused := d.live.observe(time.Now(), obs)
	if paused > 0 {
		d.log.Warn("this root did not run for a while; every cluster gets a fresh grace", "paused", paused.Round(time.Millisecond))
	}
	for _, o := range silent {
		i := slices.IndexFunc(clusters, func(c store.ClusterRecord) bool { return c.ID == o.ID })
		c := &clusters[i]
		marked, err := d.st.MarkClusterInactive(ctx, c.ID, o.LastSeen)
		if err != nil {
			return err
		}
		if !marked {
			continue // it synced meanwhile
		}
		c.Active = false
		n, err := d.st.ReleaseCluster(ctx, c, fmt.Sprintf("cluster %s silent for more than %s", c.ClusterName, d.grace))
		if err != nil {
			return err
		}
		released.Add(float64(n))
		if n > 0 {
			d.changed()
		}
		d.log.Warn("cluster lost; its instances go elsewhere", "cluster", c.ClusterName, "instances", n)
	}
	pending, err := d.st.PendingInstances(ctx)
	if err != nil || len(pending) == 0 {
		return err
	}
	snap := make([]scheduler.Cluster, 0, len(clusters))
	loc := map[string]string{}
	for _, c := range clusters {
		nodes := make([]scheduler.Node, len(c.NodeInfo))
		for i, n := range c.NodeInfo {
			nodes[i] = scheduler.Node{NodeInfo: n}
		}
		snap = append(snap, scheduler.Cluster{ID: c.ID, Name: c.ClusterName, Active: c.Active, Nodes: nodes})
		loc[c.ID] = c.ClusterLocation
	}
	specs := make([]wire.InstanceSpec, len(pending))
	for i, p := range pending {
		specs[i] = p.Spec
	}
	results := scheduler.PlaceAllClusters(snap, specs)
	as := make([]store.Assignment, len(results))
	for i, r := range results {
		as[i] = store.Assignment{Key: specs[i].Key}
		if r.Err != nil {
			as[i].Reason = r.Err.Error()
			if len(clusters) == 0 {
				as[i].Reason = "no cluster has joined the root"
			}
			placements.WithLabelValues("no_capacity").Inc()
			continue
		}
		as[i].ClusterID, as[i].ClusterLocation = r.Placement.ClusterID, loc[r.Placement.ClusterID]
		placements.WithLabelValues("placed").Inc()
	}
	n, err := d.st.Assign(ctx, as)
	if n > 0 {
		d.changed()
	}
	return err
}
