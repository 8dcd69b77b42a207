package measure

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/thicket-edge/thicket/bench/internal/procstat"
	"github.com/thicket-edge/thicket/bench/internal/report"
	"github.com/thicket-edge/thicket/bench/internal/simnode"
	"github.com/thicket-edge/thicket/bench/internal/system"
)

// The target with several clusters at the root (issue 15).
const (
	manyClusters      = 5    // clusters at one root
	manyClusterNodes  = 1000 // simulated nodes in each, at 1 report/s
	manyRootCPUBudget = 50.0 // % of a core
	// fullRateShare of one report per node and second is taken as the
	// target's load.
	fullRateShare = 0.95
	// manyShortNodes per cluster in a -short run.
	manyShortNodes = 50
)

// manySizes are the several-clusters scenario's clusters and nodes per
// cluster: the given ones where > 0, else the mode's defaults.
func manySizes(short bool, clusters, nodes int) (int, int) {
	if clusters <= 0 {
		clusters = manyClusters
	}
	if nodes <= 0 {
		nodes = manyClusterNodes
		if short {
			nodes = manyShortNodes
		}
	}
	return clusters, nodes
}

// manyResult is what the several-clusters scenario measured.
type manyResult struct {
	clusters, perCluster int
	// names of the clusters, in order.
	names []string
	join  time.Duration
	// usage by group: thicket-root, each cluster by name, allClusters, the simulator.
	usage                     map[string]procstat.Usage
	reportsPerSec             float64
	activeAfter               int
	reportErrors, reportsSent int64
}

const allClusters = "thicket-cluster (all)"

func (r manyResult) nodes() int { return r.clusters * r.perCluster }

// Clusters runs one root with several thicket-clusters, each with its own
// embedded store and broker and its own fleet of simulated nodes reporting
// every second, and measures the root's CPU (and the clusters').
func Clusters(ctx context.Context, e *Env) (out Outcome) {
	nc, per := manySizes(e.Short, e.Clusters, e.ClusterNodes)
	settle, window := 15*time.Second, 30*time.Second
	if e.Short {
		settle, window = 5*time.Second, 10*time.Second
	}
	s := &out.Section
	s.Title = "5. Control-plane scale, several clusters at the root"
	s.Method = []string{
		fmt.Sprintf("A fresh thicket-root and %d thicket-clusters joined to it, each with its own embedded store and MQTT broker; %d simulated nodes "+
			"per cluster (%d in all), simulated in the benchmark's process as in section 4 (the real protocol: registration with the node join token, "+
			"per-node MQTT credentials, the retained desired set, a `wire.NodeReport` every second, phases spread over the second), no instances. The fleets join one cluster after the other, each until the root's `GET /api/clusters/active` counts all its nodes active. "+
			"After %s of settling, CPU and RSS of the root, of each cluster and of the simulator are sampled every second for %s, as in section 4: "+
			"the root's CPU is its share of one core over the whole window. The reports the simulator published in the window are counted: "+
			"the target's load is one report per node and second, and the rate it reached is reported beside the result; below %.0f %% of it the "+
			"root's share is not judged met.", nc, per, nc*per, settle, window, fullRateShare*100),
		"**This machine has 2 cores shared by the root, the clusters and the simulator** (and every cluster's embedded store and broker): CPU " +
			"shares are of one core, and the simulator competes with what it measures.",
	}
	target := report.Target{What: fmt.Sprintf("%d clusters × %d nodes at the root, 1 report/s each", manyClusters, manyClusterNodes), Anchor: "—",
		Target: fmt.Sprintf("root ≤ %.0f %% of a core", manyRootCPUBudget), Verdict: report.NotMeasured}
	r := manyResult{clusters: nc, perCluster: per}
	defer func() {
		out.Targets = append(out.Targets, manyTarget(target, r))
		s.Tables = manyTables(r)
	}()
	s.Err = e.manyOnce(ctx, &r, settle, window)
	return
}

func (e *Env) manyOnce(ctx context.Context, r *manyResult, settle, window time.Duration) error {
	e.Log.Info("control-plane scale, several clusters", "clusters", r.clusters, "nodes per cluster", r.perCluster)
	for i := range r.clusters {
		r.names = append(r.names, fmt.Sprintf("many%d", i+1))
	}
	opts := system.ClusterOptions{Advertise: "127.0.0.1"}
	st, err := e.startStack(ctx, r.names[0], opts)
	if err != nil {
		return err
	}
	defer st.stop()
	if err := e.addClusters(ctx, st, opts, r.names[1:]...); err != nil {
		return err
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t0 := time.Now()
	var fleets []*simnode.Fleet
	defer func() {
		for _, f := range fleets {
			f.Close()
		}
	}()
	groups := []procstat.Group{{Name: "thicket-root", PIDs: []int{st.root.Proc.PID()}}}
	all := procstat.Group{Name: allClusters}
	for _, c := range st.clusters() {
		f, err := simulate(fctx, st.root, c, r.perCluster, c.Name+"-n")
		if err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		fleets = append(fleets, f)
		groups = append(groups, procstat.Group{Name: c.Name, PIDs: []int{c.Proc.PID()}})
		all.PIDs = append(all.PIDs, c.Proc.PID())
	}
	r.join = time.Since(t0)
	groups = append(groups, all, simulatorGroup())
	sleep(ctx, settle)
	if r.usage, r.reportsPerSec, err = measureLoad(ctx, groups, window, fleets...); err != nil {
		return err
	}
	active, err := st.root.API.ActiveNodes(ctx)
	if err != nil {
		return err
	}
	for _, n := range r.names {
		r.activeAfter += active[n]
	}
	for _, f := range fleets {
		r.reportErrors += f.ReportErrors.Load()
		r.reportsSent += f.ReportsSent.Load()
	}
	return nil
}

// rateShare is the reports per second reached as a share of one per node
// and second.
func (r manyResult) rateShare() float64 { return r.reportsPerSec / float64(r.nodes()) }

// manyTarget fills the summary row t from r: judged only at the target's
// sizes, and met only at (nearly) the target's report rate with every node
// still active.
func manyTarget(t report.Target, r manyResult) report.Target {
	ro, ok := r.usage["thicket-root"]
	if !ok {
		return t
	}
	lo, hi := clusterCPURange(r)
	rate := fmt.Sprintf("reports %s (%.0f %% of one per node and second)", report.Rate(r.reportsPerSec), r.rateShare()*100)
	t.Measured = fmt.Sprintf("%d × %d nodes: root %s of a core (p95 of 1-s intervals %s, %s RSS); clusters %s to %s each, %s together; %s; %d of %d nodes active after",
		r.clusters, r.perCluster, report.Pct(ro.TotalCPUPercent), report.Pct(ro.CPUPercent.P95()), report.MB(ro.RSSMB.Median()),
		report.Pct(lo), report.Pct(hi), report.Pct(r.usage[allClusters].TotalCPUPercent), rate, r.activeAfter, r.nodes())
	switch {
	case r.clusters < manyClusters || r.perCluster < manyClusterNodes:
		t.Note = fmt.Sprintf("measured at %d × %d nodes only; the full run measures %d × %d", r.clusters, r.perCluster, manyClusters, manyClusterNodes)
	case ro.TotalCPUPercent > manyRootCPUBudget || r.activeAfter != r.nodes():
		t.Verdict = report.Missed
		if r.rateShare() < fullRateShare {
			t.Note = fmt.Sprintf("even at %.0f %% of the target's report rate", r.rateShare()*100)
		}
	case r.rateShare() < fullRateShare:
		t.Note = fmt.Sprintf("not judged: the simulator reached only %.0f %% of the target's report rate", r.rateShare()*100)
	default:
		t.Verdict = report.Met
	}
	return t
}

// clusterCPURange is the lowest and highest CPU share of one cluster.
func clusterCPURange(r manyResult) (lo, hi float64) {
	for i, n := range r.names {
		c := r.usage[n].TotalCPUPercent
		if i == 0 || c < lo {
			lo = c
		}
		if i == 0 || c > hi {
			hi = c
		}
	}
	return lo, hi
}

func manyTables(r manyResult) []report.Table {
	load := report.Table{Header: []string{"clusters", "nodes per cluster", "nodes", "joined in", "reports/s: target", "reports/s: reached",
		"nodes active after", "report errors"}}
	if r.usage == nil {
		return nil
	}
	load.Rows = append(load.Rows, []string{strconv.Itoa(r.clusters), strconv.Itoa(r.perCluster), strconv.Itoa(r.nodes()),
		report.Ms(ms(r.join)), report.Rate(float64(r.nodes())), fmt.Sprintf("%s (%.1f %%)", report.Rate(r.reportsPerSec), r.rateShare()*100),
		fmt.Sprintf("%d of %d", r.activeAfter, r.nodes()), fmt.Sprintf("%d of %d", r.reportErrors, r.reportsSent+r.reportErrors)})
	procs := report.Table{Header: []string{"process", "CPU (window)", "CPU p95 (1 s)", "RSS median / p95"}}
	for _, n := range append(append([]string{"thicket-root"}, r.names...), allClusters, "simulator") {
		u := r.usage[n]
		name := n
		if n != "thicket-root" && n != allClusters && n != "simulator" {
			name = "thicket-cluster " + n
		}
		procs.Rows = append(procs.Rows, []string{name, report.Pct(u.TotalCPUPercent), report.Pct(u.CPUPercent.P95()),
			report.MB(u.RSSMB.Median()) + " / " + report.MB(u.RSSMB.P95())})
	}
	return []report.Table{load, procs}
}
