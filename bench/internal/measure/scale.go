package measure

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/bench/internal/procstat"
	"github.com/thicket-edge/thicket/bench/internal/report"
	"github.com/thicket-edge/thicket/bench/internal/rootapi"
	"github.com/thicket-edge/thicket/bench/internal/simnode"
	"github.com/thicket-edge/thicket/bench/internal/stats"
	"github.com/thicket-edge/thicket/bench/internal/system"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// The targets (docs/targets.md) at scale.
const (
	scaleTarget      = 2000 // nodes in one cluster at 1 report/s
	rootCPUBudget    = 25.0 // % of a core, at scaleTarget nodes
	clusterCPUBudget = 50.0 // % of a core, at scaleTarget nodes
	lagBudget        = time.Second
	placeNodes       = 1000  // end-to-end placements are judged with this many nodes
	placeBudget      = 500.0 // placements per second, API → RUNNING → visible at the root
)

const (
	placeServices = 10
	placeParallel = 8
	lagPoll       = 10 * time.Millisecond
)

// scaleResult is what one cluster size measured.
type scaleResult struct {
	nodes, instances               int
	heapIdle, heapLoaded           float64 // cluster's Go heap in use, MB
	join                           time.Duration
	reportsPerSec                  float64
	idle, loaded                   map[string]procstat.Usage
	placeCPU                       map[string]float64
	apiCalls, atNodes, atRoot      time.Duration
	lagMetrics, lagAPI             []time.Duration
	activeAfter                    int
	placed                         bool
	reportErrors, reportsSentTotal int64
	// The cluster (and its embedded broker) restarted under the fleet:
	// until every node is connected again, until every node holds a
	// desired set of the new process, and the instances that changed node.
	restarted           bool
	reconnect, converge time.Duration
	moved               int
}

// Scale runs one thicket-cluster (and a root) with many simulated nodes in
// this process, each reporting every second: cluster CPU and memory,
// report-to-visible lag, and the time to place 1,000 instances.
func Scale(ctx context.Context, e *Env) (out Outcome) {
	sizes, window, probes, place := []int{500, 1000, 2000}, 30*time.Second, 10, 1000
	if e.Short {
		sizes, window, probes, place = []int{200}, 10*time.Second, 5, 200
	}
	s := &out.Section
	s.Title = "4. Control-plane scale"
	s.Method = []string{
		fmt.Sprintf("A fresh thicket-root and one thicket-cluster (embedded store and broker) per size; the nodes are simulated in the benchmark's own process, "+
			"speaking the real protocol: `POST /api/node/register` with the node join token (per-node MQTT credentials), MQTT connection as "+
			"`thicket-node-<id>`, subscription to the retained desired set, a `wire.NodeReport` every second (phases spread over the second) and at once "+
			"when the desired set changes, every desired instance reported `RUNNING`. Sizes: %s nodes.", joinInts(sizes)),
		fmt.Sprintf("**CPU and RSS** of thicket-cluster (and of the root and the simulator) are sampled for %s with no instances, then again with %d instances "+
			"reported every second. **Placement:** %d `POST /api/service/{id}/instance` calls (%d services, %d concurrent callers), timed from the first call "+
			"until every instance was reported RUNNING by its simulated node, and until the root's API (`GET /api/services/{app}`, every 250 ms) shows all RUNNING. "+
			"**Report-to-visible lag:** a simulated node reports a probe instance `FAILED` (and then `RUNNING` again); timed from just before that report is "+
			"published until the cluster's `/metrics` (`thicket_cluster_instances{status=\"FAILED\"}`) and the root's `GET /api/service/{id}` show it, "+
			"each polled every %s; %d round trips, both transitions counted.",
			window, place, place, placeServices, placeParallel, report.Ms(ms(lagPoll)), probes),
		"**Broker restart** (the largest size, at the end): thicket-cluster, and with it its embedded MQTT broker, is stopped (SIGTERM) and started again " +
			"on the same data dir while every simulated node stays up; timed until every node is connected again and until every node holds a desired set " +
			"of the new process, and the instances whose node changed are counted (the chaos suite's broker scenario).",
		"**This machine has 2 cores shared by the cluster, the root and the simulator** (and the root's and cluster's embedded stores): CPU shares are of one core, and " +
			"contention with the simulator inflates latencies.",
	}
	target := report.Target{What: fmt.Sprintf("%d nodes in one cluster at 1 report/s", scaleTarget), Anchor: "—",
		Target: fmt.Sprintf("root ≤ %.0f %% and cluster ≤ %.0f %% of a core", rootCPUBudget, clusterCPUBudget), Verdict: report.NotMeasured}
	placeRow := report.Target{What: fmt.Sprintf("end-to-end placements (API → RUNNING → visible at root), %d nodes", placeNodes),
		Anchor: "Kubernetes ~100-300 pods/s; Nomad C2M ~1,500/s with 3 servers", Target: fmt.Sprintf("≥ %.0f/s", placeBudget), Verdict: report.NotMeasured}
	lagRow := report.Target{What: fmt.Sprintf("node report → visible in the root API, %d nodes", scaleTarget), Anchor: "—",
		Target: "≤ " + report.Ms(ms(lagBudget)), Verdict: report.NotMeasured}
	defer func() { out.Targets = append(out.Targets, target, placeRow, lagRow) }()

	var results []scaleResult
	defer func() { s.Tables = scaleTables(results) }()
	for _, n := range sizes {
		e.Log.Info("control-plane scale", "nodes", n)
		r, err := e.scaleOnce(ctx, n, place, window, probes, n == sizes[len(sizes)-1])
		results = append(results, r)
		if err != nil {
			s.Err = fmt.Errorf("%d nodes: %w", n, err)
			break
		}
	}
	last := results[len(results)-1]
	cl := last.loaded["thicket-cluster"]
	full := last.nodes >= scaleTarget
	if ro, ok := last.loaded["thicket-root"]; ok {
		target.Measured = fmt.Sprintf("%d nodes, %d instances: root %s, cluster %s of a core (cluster p95 of 1-s intervals %s, %s RSS), %d of %d nodes active after",
			last.nodes, last.instances, report.Pct(ro.TotalCPUPercent), report.Pct(cl.TotalCPUPercent), report.Pct(cl.CPUPercent.P95()),
			report.MB(cl.RSSMB.Median()), last.activeAfter, last.nodes)
		if full {
			target.Verdict = report.Verdict(ro.TotalCPUPercent <= rootCPUBudget && cl.TotalCPUPercent <= clusterCPUBudget && last.activeAfter == last.nodes)
		}
	}
	if len(last.lagAPI) > 0 {
		la := stats.Durations(last.lagAPI)
		lagRow.Measured = fmt.Sprintf("%s median, %s p95 with %d nodes (cluster /metrics: %s median)", report.Ms(la.Median()), report.Ms(la.P95()),
			last.nodes, report.Ms(stats.Durations(last.lagMetrics).Median()))
		if full {
			lagRow.Verdict = report.Verdict(la.Median() <= ms(lagBudget))
		}
	}
	// Placements are judged with placeNodes nodes (the largest size in a
	// short run).
	pr := last
	for _, r := range results {
		if r.nodes == placeNodes {
			pr = r
		}
	}
	if pr.placed && pr.atRoot > 0 {
		rate := float64(pr.instances) / pr.atRoot.Seconds()
		placeRow.Measured = fmt.Sprintf("%.1f/s: %d instances in %s with %d nodes (%s of it the API calls)", rate, pr.instances,
			report.Ms(ms(pr.atRoot)), pr.nodes, report.Ms(ms(pr.apiCalls)))
		if pr.nodes == placeNodes {
			placeRow.Verdict = report.Verdict(rate >= placeBudget)
		}
	}
	if !full && last.loaded != nil {
		target.Note = fmt.Sprintf("measured at %d nodes only (-short); the full run measures %d", last.nodes, scaleTarget)
		lagRow.Note = target.Note
		placeRow.Note = fmt.Sprintf("measured at %d nodes only (-short); the full run measures %d", last.nodes, placeNodes)
	}
	return
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

func (e *Env) scaleOnce(ctx context.Context, n, place int, window time.Duration, probes int, restart bool) (r scaleResult, err error) {
	r.nodes, r.instances = n, place
	st, err := e.startStack(ctx, "scale", system.ClusterOptions{Advertise: "127.0.0.1"})
	if err != nil {
		return r, err
	}
	defer st.stop()
	t0 := time.Now()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fleet, err := simulate(fctx, st.root, st.cluster, n, "sim")
	if err != nil {
		return r, err
	}
	defer fleet.Close()
	r.join = time.Since(t0)
	groups := []procstat.Group{
		{Name: "thicket-cluster", PIDs: []int{st.cluster.Proc.PID()}},
		{Name: "thicket-root", PIDs: []int{st.root.Proc.PID()}},
		simulatorGroup(),
	}
	sleep(ctx, 3*time.Second)
	if r.idle, r.reportsPerSec, err = measureLoad(ctx, groups, window, fleet); err != nil {
		return r, err
	}
	metricsTok, err := st.cluster.MetricsToken()
	if err != nil {
		return r, err
	}
	clusterClient, err := st.cluster.HTTPClient()
	if err != nil {
		return r, err
	}
	metricsURL := metricsSource{URL: st.cluster.NodeURL + "/metrics", Token: metricsTok, Client: clusterClient}
	if h, err := metricValue(ctx, metricsURL, "go_memstats_heap_inuse_bytes"); err == nil {
		r.heapIdle = h / (1 << 20)
	}

	api := st.root.API
	// The probe of the lag measurement: one instance on some node.
	// The simulated nodes run nothing: the image is never pulled.
	_, probeIDs, err := api.CreateApp(ctx, "probe", []rootapi.ServiceSpec{{Name: "probe", Image: "bench/none:v1", MemoryMB: 16}})
	if err != nil {
		return r, err
	}
	probeSvc := probeIDs["probe"]
	if _, err := api.AddInstance(ctx, probeSvc); err != nil {
		return r, err
	}
	if err := waitInstance(ctx, api, probeSvc, 0, wire.StatusRunning); err != nil {
		return r, err
	}

	// Placement of 1,000 instances.
	specs := make([]rootapi.ServiceSpec, placeServices)
	for i := range specs {
		specs[i] = rootapi.ServiceSpec{Name: fmt.Sprintf("s%d", i), Image: "bench/none:v1", MemoryMB: 16}
	}
	appID, ids, err := api.CreateApp(ctx, "scale", specs)
	if err != nil {
		return r, err
	}
	svcIDs := make([]string, 0, len(ids))
	for _, id := range ids {
		svcIDs = append(svcIDs, id)
	}
	cpu0 := cpuTicks(groups)
	p0 := time.Now()
	keys, err := addInstances(ctx, api, svcIDs, place, placeParallel)
	r.apiCalls = time.Since(p0)
	if err != nil {
		return r, err
	}
	var lastNode time.Time
	if err := testharness.Until(ctx, 5*time.Minute, 100*time.Millisecond, "all instances reported RUNNING by the nodes", func() (bool, string) {
		last, missing := fleet.FirstRunning(keys)
		lastNode = last
		return missing == 0, fmt.Sprintf("%d missing, %d placed", missing, fleet.Placed())
	}); err != nil {
		return r, err
	}
	r.atNodes = lastNode.Sub(p0)
	if err := testharness.Until(ctx, 5*time.Minute, 250*time.Millisecond, "root API shows all RUNNING", func() (bool, string) {
		svcs, err := api.Services(ctx, appID)
		if err != nil {
			return false, err.Error()
		}
		running := 0
		for _, sv := range svcs {
			for _, in := range sv.InstanceList {
				if rootapi.Running(in) {
					running++
				}
			}
		}
		return running == place, fmt.Sprintf("%d RUNNING", running)
	}); err != nil {
		return r, err
	}
	r.atRoot = time.Since(p0)
	r.placed = true
	r.placeCPU = cpuShare(groups, cpu0, time.Since(p0))

	sleep(ctx, 3*time.Second)
	if r.loaded, err = procstat.Measure(ctx, groups, window, time.Second); err != nil {
		return r, err
	}
	if h, err := metricValue(ctx, metricsURL, "go_memstats_heap_inuse_bytes"); err == nil {
		r.heapLoaded = h / (1 << 20)
	}

	// Report-to-visible lag.
	key := wire.InstanceKey(probeSvc, 0)
	for range probes {
		for _, status := range []string{wire.StatusFailed, wire.StatusRunning} {
			m, a, err := e.lagOnce(ctx, fleet, api, metricsURL, probeSvc, key, status)
			if err != nil {
				return r, err
			}
			r.lagMetrics, r.lagAPI = append(r.lagMetrics, m), append(r.lagAPI, a)
			sleep(ctx, 300*time.Millisecond)
		}
	}
	active, err := api.ActiveNodes(ctx)
	if err != nil {
		return r, err
	}
	r.activeAfter = active[st.cluster.Name]
	r.reportErrors, r.reportsSentTotal = fleet.ReportErrors.Load(), fleet.ReportsSent.Load()
	if restart {
		err = restartBroker(ctx, st.cluster, fleet, &r)
	}
	return r, err
}

// restartBroker restarts the cluster, and with it the embedded broker,
// under the fleet (SIGTERM, then started again on the same data dir) and
// measures until every node is connected again and holds a desired set of
// the new process, and how many instances changed node.
func restartBroker(ctx context.Context, c *system.Cluster, fleet *simnode.Fleet, r *scaleResult) error {
	before := fleet.Assignments()
	t0 := time.Now()
	c.Proc.StopTimeout = 30 * time.Second
	c.Proc.Stop()
	if err := c.Proc.Start(); err != nil {
		return fmt.Errorf("restart the cluster: %w", err)
	}
	n := r.nodes
	if err := testharness.Until(ctx, 5*time.Minute, 100*time.Millisecond, "every simulated node connected again", func() (bool, string) {
		k := fleet.Connected()
		return k == n, fmt.Sprintf("%d of %d", k, n)
	}); err != nil {
		return err
	}
	r.reconnect = time.Since(t0)
	if err := testharness.Until(ctx, 5*time.Minute, 100*time.Millisecond, "every desired set republished", func() (bool, string) {
		k := fleet.DesiredSince(t0.UnixNano())
		return k == n, fmt.Sprintf("%d of %d", k, n)
	}); err != nil {
		return err
	}
	r.converge = time.Since(t0)
	after := fleet.Assignments()
	for k, node := range before {
		if after[k] != node {
			r.moved++
		}
	}
	r.restarted = true
	return nil
}

// simulate starts n simulated nodes named <prefix><i> joined to c, each
// reporting every second until ctx ends, and waits until the root sees them
// all active.
func simulate(ctx context.Context, root *system.Root, c *system.Cluster, n int, prefix string) (*simnode.Fleet, error) {
	fleet, err := simnode.Start(ctx, simnode.Config{ClusterURL: c.NodeURL, Token: c.NodeToken, N: n,
		Prefix: prefix, Capacity: wire.Resources{MilliCPU: 8000, MemoryMB: 16384}})
	if err != nil {
		return nil, err
	}
	if err := root.WaitNodes(ctx, c.Name, n, 3*time.Minute); err != nil {
		fleet.Close()
		return nil, err
	}
	return fleet, nil
}

// simulatorGroup is this process, which runs the simulated nodes.
func simulatorGroup() procstat.Group {
	return procstat.Group{Name: "simulator", PIDs: []int{os.Getpid()}}
}

// measureLoad samples the groups every second for the window and returns
// their usage and the reports per second the fleets published meanwhile.
func measureLoad(ctx context.Context, groups []procstat.Group, window time.Duration, fleets ...*simnode.Fleet) (map[string]procstat.Usage, float64, error) {
	sent := func() (n int64) {
		for _, f := range fleets {
			n += f.ReportsSent.Load()
		}
		return n
	}
	s0, t0 := sent(), time.Now()
	u, err := procstat.Measure(ctx, groups, window, time.Second)
	return u, float64(sent()-s0) / time.Since(t0).Seconds(), err
}

// addInstances requests count instances round robin over the services with
// parallel callers and returns their instance keys.
func addInstances(ctx context.Context, api *rootapi.Client, svcs []string, count, parallel int) ([]string, error) {
	var (
		mu    sync.Mutex
		keys  []string
		first error
		wg    sync.WaitGroup
	)
	next := make(chan string)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for svc := range next {
				n, err := api.AddInstance(ctx, svc)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				if err == nil {
					keys = append(keys, wire.InstanceKey(svc, n))
				}
				mu.Unlock()
			}
		}()
	}
	for i := range count {
		next <- svcs[i%len(svcs)]
	}
	close(next)
	wg.Wait()
	return keys, first
}

func waitInstance(ctx context.Context, api *rootapi.Client, svc string, n int, status string) error {
	return testharness.Until(ctx, 2*time.Minute, 50*time.Millisecond, fmt.Sprintf("instance %d %s", n, status), func() (bool, string) {
		in, ok, err := api.Instance(ctx, svc, n)
		if err != nil {
			return false, err.Error()
		}
		return ok && in.Status == status, in.Status + " " + in.StatusDetail
	})
}

// lagOnce makes the probe's node report status and times until the
// cluster's metrics and the root's API show it.
func (e *Env) lagOnce(ctx context.Context, fleet *simnode.Fleet, api *rootapi.Client, metricsURL metricsSource, svc, key, status string) (toMetrics, toAPI time.Duration, err error) {
	force, detail := status, "thicket-bench probe"
	if status == wire.StatusRunning {
		force, detail = "", ""
	}
	t0, err := fleet.SetStatus(ctx, key, force, detail)
	if err != nil {
		return 0, 0, err
	}
	var wg sync.WaitGroup
	var errM, errA error
	wg.Add(2)
	go func() {
		defer wg.Done()
		errM = testharness.Until(ctx, time.Minute, lagPoll, "cluster metrics show "+status, func() (bool, string) {
			failed, err := metricValue(ctx, metricsURL, `thicket_cluster_instances{status="FAILED"}`)
			if err != nil {
				return false, err.Error()
			}
			if (status == wire.StatusFailed) == (failed > 0) {
				toMetrics = time.Since(t0)
				return true, ""
			}
			return false, fmt.Sprintf("FAILED gauge %v", failed)
		})
	}()
	go func() {
		defer wg.Done()
		errA = testharness.Until(ctx, time.Minute, lagPoll, "root API shows "+status, func() (bool, string) {
			in, _, err := api.Instance(ctx, svc, 0)
			if err != nil {
				return false, err.Error()
			}
			if in.Status == status {
				toAPI = time.Since(t0)
				return true, ""
			}
			return false, in.Status
		})
	}()
	wg.Wait()
	if errM != nil {
		return 0, 0, errM
	}
	return toMetrics, toAPI, errA
}

var metricsClient = &http.Client{Timeout: 10 * time.Second}

// metricValue reads one sample of a Prometheus text exposition (0 when
// absent), e.g. `thicket_cluster_instances{status="FAILED"}`.
// metricsSource is a /metrics URL and the bearer token it requires.
// Client, if set, reaches it (the cluster's pins its CA).
type metricsSource struct {
	URL, Token string
	Client     *http.Client
}

func metricValue(ctx context.Context, src metricsSource, sample string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+src.Token)
	client := metricsClient
	if src.Client != nil {
		client = src.Client
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", src.URL, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, sc.Err()
}

func cpuTicks(groups []procstat.Group) []uint64 {
	out := make([]uint64, len(groups))
	for i, g := range groups {
		for _, pid := range g.PIDs {
			t, _ := procstat.CPUTicks(pid)
			out[i] += t
		}
	}
	return out
}

// cpuShare is each group's CPU, in % of a core, since the ticks t0.
func cpuShare(groups []procstat.Group, t0 []uint64, elapsed time.Duration) map[string]float64 {
	now := cpuTicks(groups)
	out := make(map[string]float64, len(groups))
	for i, g := range groups {
		out[g.Name] = float64(now[i]-t0[i]) / 100 / elapsed.Seconds() * 100
	}
	return out
}

func scaleTables(results []scaleResult) []report.Table {
	res := report.Table{Header: []string{"nodes", "joined in", "reports/s", "instances", "cluster CPU (window)", "cluster CPU p95 (1 s)",
		"cluster RSS median / p95", "cluster Go heap in use", "root CPU", "root RSS", "simulator CPU"}}
	lat := report.Table{Header: []string{"nodes", "instances", "API calls", "all RUNNING at the nodes", "all RUNNING in the root API",
		"end-to-end placements/s", "cluster / root CPU while placing", "lag to cluster /metrics: median / p95", "lag to root API: median / p95",
		"nodes active after", "report errors"}}
	for _, r := range results {
		for _, phase := range []struct {
			n    int
			u    map[string]procstat.Usage
			heap float64
		}{{0, r.idle, r.heapIdle}, {r.instances, r.loaded, r.heapLoaded}} {
			if phase.u == nil {
				continue
			}
			c, ro, sim := phase.u["thicket-cluster"], phase.u["thicket-root"], phase.u["simulator"]
			rps := report.Rate(r.reportsPerSec)
			if phase.n > 0 {
				rps = "″"
			}
			res.Rows = append(res.Rows, []string{strconv.Itoa(r.nodes), report.Ms(float64(r.join.Milliseconds())), rps, strconv.Itoa(phase.n),
				report.Pct(c.TotalCPUPercent), report.Pct(c.CPUPercent.P95()), report.MB(c.RSSMB.Median()) + " / " + report.MB(c.RSSMB.P95()),
				report.MB(phase.heap), report.Pct(ro.TotalCPUPercent), report.MB(ro.RSSMB.Median()), report.Pct(sim.TotalCPUPercent)})
		}
		if !r.placed {
			continue
		}
		lm, la := stats.Durations(r.lagMetrics), stats.Durations(r.lagAPI)
		lat.Rows = append(lat.Rows, []string{strconv.Itoa(r.nodes), strconv.Itoa(r.instances), report.Ms(ms(r.apiCalls)), report.Ms(ms(r.atNodes)), report.Ms(ms(r.atRoot)),
			report.Rate(float64(r.instances) / r.atRoot.Seconds()),
			report.Pct(r.placeCPU["thicket-cluster"]) + " / " + report.Pct(r.placeCPU["thicket-root"]),
			report.Ms(lm.Median()) + " / " + report.Ms(lm.P95()), report.Ms(la.Median()) + " / " + report.Ms(la.P95()),
			fmt.Sprintf("%d of %d", r.activeAfter, r.nodes), fmt.Sprintf("%d of %d", r.reportErrors, r.reportsSentTotal+r.reportErrors)})
	}
	restart := report.Table{Header: []string{"nodes", "instances", "all nodes connected again", "all desired sets republished", "instances moved"}}
	for _, r := range results {
		if r.restarted {
			restart.Rows = append(restart.Rows, []string{strconv.Itoa(r.nodes), strconv.Itoa(r.instances), report.Ms(ms(r.reconnect)),
				report.Ms(ms(r.converge)), strconv.Itoa(r.moved)})
		}
	}
	out := []report.Table{res, lat}
	if len(restart.Rows) > 0 {
		out = append(out, restart)
	}
	return out
}
