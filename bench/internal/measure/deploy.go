package measure

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/bench/internal/ctrcli"
	"github.com/thicket-edge/thicket/bench/internal/report"
	"github.com/thicket-edge/thicket/bench/internal/rootapi"
	"github.com/thicket-edge/thicket/bench/internal/stats"
	"github.com/thicket-edge/thicket/bench/internal/system"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// Poll interval of the API while waiting for RUNNING.
const apiPoll = 20 * time.Millisecond

// deployBudget is the target (docs/targets.md): the floor plus this.
const deployBudget = 150.0 // ms

const burstSize = 50

// burstBudget is the target (docs/targets.md) for the burst: a ratio to the floor.
const burstBudget = 1.5

// Deploy measures API call → RUNNING for one instance on one worker with a
// cached image, against ctr run of the same image on the same containerd,
// and the same for 50 services at once.
func Deploy(ctx context.Context, e *Env) (out Outcome) {
	runs, bursts := 30, 3
	if e.Short {
		runs, bursts = 10, 1
	}
	s := &out.Section
	s.Title = "1. Deploy latency"
	s.Method = []string{
		fmt.Sprintf("One worker (`thicket-node --net-socket none`: its containers join the node's network namespace), one cluster, "+
			"one root, embedded store and broker. **Thicket:** `POST /api/service/{id}/instance`, then `GET /api/service/{id}` every %s "+
			"until the instance is `RUNNING` (the poll adds up to %s to Thicket's times). **Floor:** `ctr -n <ns> run -d --with-ns network:<node netns> "+
			"--log-uri file://… <image> <id>` of the same image in the same containerd namespace (so equally cached and unpacked), "+
			"timed until ctr returns — it returns once the task has started; the task is then checked to be `RUNNING`. "+
			"ctr refuses `--rm` with `-d`, so floor containers are removed afterwards, untimed; each Thicket instance is deleted and its container "+
			"gone before the next run. Thicket and floor runs alternate. %d runs each after one untimed warm-up (the image pull).",
			report.Ms(ms(apiPoll)), report.Ms(ms(apiPoll)), runs),
		fmt.Sprintf("**%d at once:** %d services are created (untimed), then one instance of each is requested by %d concurrent API calls; "+
			"the time is until `GET /api/services/{app}` (polled every %s) shows all RUNNING. The floor starts %d containers with %d concurrent `ctr run -d`. "+
			"%d round(s); per-instance latencies within the rounds are pooled.",
			burstSize, burstSize, burstSize, report.Ms(ms(apiPoll)), burstSize, burstSize, bursts),
	}
	deployTarget := report.Target{What: "deploy, API call → RUNNING, cached image", Anchor: "reference: seconds; `ctr run` is the floor",
		Target: "floor + ≤ 150 ms", Verdict: report.NotMeasured}
	burstTarget := report.Target{What: fmt.Sprintf("deploy, %d services at once on one worker", burstSize), Anchor: "`ctr run` ×50 concurrently is the floor",
		Target: fmt.Sprintf("≤ %.1f × floor", burstBudget), Verdict: report.NotMeasured}
	defer func() { out.Targets = append(out.Targets, deployTarget, burstTarget) }()

	st, err := e.startStack(ctx, "deploy", system.ClusterOptions{})
	if err != nil {
		s.Err = err
		return
	}
	defer st.stop()
	if s.Err = e.addNodes(ctx, st, system.NodeOptions{MemoryMB: 8192}, 11); s.Err != nil {
		return
	}
	node := st.nodes[0]
	api := st.root.API
	appID, ids, err := api.CreateApp(ctx, "deploy", []rootapi.ServiceSpec{
		{Name: "dep", Image: e.Sys.Image, MemoryMB: 16, Environment: []string{"PORT=18081", "INSTANCE=dep"}},
	})
	if err != nil {
		s.Err = err
		return
	}
	defer api.DeleteApplication(context.WithoutCancel(ctx), appID)
	svc := ids["dep"]
	floorLogs := filepath.Join(node.DataDir, "floor")
	floorOpts := func(port int) ctrcli.RunOptions {
		return ctrcli.RunOptions{Netns: node.Host.Path, Env: []string{fmt.Sprintf("PORT=%d", port)}, LogPath: fmt.Sprintf("%s-%d.log", floorLogs, port)}
	}

	thicket := func(timeout time.Duration) (time.Duration, error) {
		return e.deployOnce(ctx, api, svc, timeout, apiPoll)
	}
	floorN := 0
	floor := func() (time.Duration, error) {
		floorN++
		id := fmt.Sprintf("floor-%d", floorN)
		t0 := time.Now()
		if err := e.Sys.NS.RunDetached(ctx, e.Sys.Image, id, floorOpts(18082)); err != nil {
			return 0, err
		}
		took := time.Since(t0)
		status, err := e.Sys.NS.TaskStatus(ctx, id)
		if err == nil && status != "RUNNING" {
			err = fmt.Errorf("floor task %s is %q after ctr run -d", id, status)
		}
		return took, errors.Join(err, e.Sys.NS.Remove(ctx, id))
	}

	// Warm-up: the first deployment pulls the image; the floor's first
	// run warms ctr's own paths.
	if _, s.Err = thicket(3 * time.Minute); s.Err != nil {
		return
	}
	if _, s.Err = floor(); s.Err != nil {
		return
	}
	var th, fl, noop []time.Duration
	for range runs {
		t0 := time.Now()
		if s.Err = e.Sys.NS.Version(ctx); s.Err != nil {
			return
		}
		noop = append(noop, time.Since(t0))
	}
	for i := range runs {
		order := []bool{true, false}
		if i%2 == 1 {
			order = []bool{false, true}
		}
		for _, isThicket := range order {
			if isThicket {
				d, err := thicket(time.Minute)
				if err != nil {
					s.Err = fmt.Errorf("thicket run %d: %w", i, err)
					break
				}
				th = append(th, d)
			} else {
				d, err := floor()
				if err != nil {
					s.Err = fmt.Errorf("floor run %d: %w", i, err)
					break
				}
				fl = append(fl, d)
			}
		}
		if s.Err != nil {
			break
		}
	}
	ths, fls, nos := stats.Durations(th), stats.Durations(fl), stats.Durations(noop)
	overMed, overP95 := ths.Median()-fls.Median(), ths.P95()-fls.P95()
	s.Tables = append(s.Tables, report.Table{
		Header: []string{"one instance, cached image", "runs", "median", "p95", "ratio to floor (median)", "over floor (median / p95)"},
		Rows: [][]string{
			{"(in the floor: ctr's start-up and one call, `ctr version`)", fmt.Sprint(len(noop)), report.Ms(nos.Median()), report.Ms(nos.P95()), "–", "–"},
			{"floor: `ctr run -d`", fmt.Sprint(len(fl)), report.Ms(fls.Median()), report.Ms(fls.P95()), "×1", "–"},
			{"Thicket: API → RUNNING", fmt.Sprint(len(th)), report.Ms(ths.Median()), report.Ms(ths.P95()),
				report.Ratio(stats.Ratio(ths.Median(), fls.Median())), report.Ms(overMed) + " / " + report.Ms(overP95)},
		},
	})
	if len(th) > 0 && len(fl) > 0 {
		deployTarget.Measured = fmt.Sprintf("floor %s + %s (median; p95: floor %s + %s)", report.Ms(fls.Median()), report.Ms(overMed),
			report.Ms(fls.P95()), report.Ms(overP95))
		deployTarget.Verdict = report.Verdict(overMed <= deployBudget)
		if overMed <= deployBudget && overP95 > deployBudget {
			deployTarget.Note = "met at the median, missed at p95"
		}
	}
	if s.Err != nil {
		return
	}

	// 50 at once.
	specs := make([]rootapi.ServiceSpec, burstSize)
	for i := range specs {
		specs[i] = rootapi.ServiceSpec{Name: fmt.Sprintf("b%d", i), Image: e.Sys.Image, MemoryMB: 16,
			Environment: []string{fmt.Sprintf("PORT=%d", 19100+i)}}
	}
	burstApp, burstIDs, err := api.CreateApp(ctx, "burst", specs)
	if err != nil {
		s.Err = err
		return
	}
	defer api.DeleteApplication(context.WithoutCancel(ctx), burstApp)
	var thAll, flAll, thEach, flEach []time.Duration
	for r := range bursts {
		all, each, err := e.burst(ctx, api, burstApp, burstIDs, node.ContainerFilter())
		if err != nil {
			s.Err = fmt.Errorf("Thicket burst %d: %w", r, err)
			break
		}
		thAll, thEach = append(thAll, all), append(thEach, each...)
		all, each, err = e.floorBurst(ctx, r, floorOpts)
		if err != nil {
			s.Err = fmt.Errorf("floor burst %d: %w", r, err)
			break
		}
		flAll, flEach = append(flAll, all), append(flEach, each...)
	}
	ta, fa, te, fe := stats.Durations(thAll), stats.Durations(flAll), stats.Durations(thEach), stats.Durations(flEach)
	s.Tables = append(s.Tables, report.Table{
		Header: []string{fmt.Sprintf("%d at once", burstSize), "rounds", "all RUNNING: median", "p95", "ratio to floor",
			"per instance: median", "p95", "ratio to floor"},
		Rows: [][]string{
			{fmt.Sprintf("floor: %d × `ctr run -d`", burstSize), fmt.Sprint(len(flAll)), report.Ms(fa.Median()), report.Ms(fa.P95()), "×1",
				report.Ms(fe.Median()), report.Ms(fe.P95()), "×1"},
			{"Thicket: API → RUNNING", fmt.Sprint(len(thAll)), report.Ms(ta.Median()), report.Ms(ta.P95()),
				report.Ratio(stats.Ratio(ta.Median(), fa.Median())), report.Ms(te.Median()), report.Ms(te.P95()),
				report.Ratio(stats.Ratio(te.Median(), fe.Median()))},
		},
	})
	if len(thAll) > 0 && len(flAll) > 0 {
		ratio := stats.Ratio(ta.Median(), fa.Median())
		burstTarget.Measured = fmt.Sprintf("all RUNNING after %s (floor %s, %s)", report.Ms(ta.Median()), report.Ms(fa.Median()),
			report.Ratio(ratio))
		burstTarget.Verdict = report.Verdict(ratio <= burstBudget)
	}
	return
}

// burst requests one more instance of every service at once and returns
// the time until all are RUNNING and each one's time; then it deletes them.
func (e *Env) burst(ctx context.Context, api *rootapi.Client, appID string, ids map[string]string, nodeFilter string) (time.Duration, []time.Duration, error) {
	type req struct {
		svc string
		n   int
	}
	reqs := make(chan req, len(ids))
	errs := make(chan error, len(ids))
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := api.AddInstance(ctx, id)
			if err != nil {
				errs <- err
				return
			}
			reqs <- req{id, n}
		}()
	}
	wg.Wait()
	close(reqs)
	close(errs)
	if err := <-errs; err != nil {
		return 0, nil, err
	}
	want := map[string]int{}
	for r := range reqs {
		want[r.svc] = r.n
	}
	done := map[string]time.Duration{}
	err := testharness.Until(ctx, 5*time.Minute, apiPoll, "all instances RUNNING", func() (bool, string) {
		svcs, err := api.Services(ctx, appID)
		if err != nil {
			return false, err.Error()
		}
		now := time.Since(t0)
		for _, sv := range svcs {
			n, ok := want[sv.MicroserviceID]
			if _, seen := done[sv.MicroserviceID]; !ok || seen {
				continue
			}
			for _, in := range sv.InstanceList {
				if in.InstanceNumber == n && rootapi.Running(in) {
					done[sv.MicroserviceID] = now
				}
			}
		}
		return len(done) == len(want), fmt.Sprintf("%d of %d RUNNING", len(done), len(want))
	})
	var all time.Duration
	each := make([]time.Duration, 0, len(done))
	for _, d := range done {
		each = append(each, d)
		all = max(all, d)
	}
	// Untimed clean-up.
	for svc, n := range want {
		if derr := api.DeleteInstance(ctx, svc, n); derr != nil && err == nil {
			err = derr
		}
	}
	if werr := e.waitNoContainers(ctx, nodeFilter, 3*time.Minute); werr != nil && err == nil {
		err = werr
	}
	return all, each, err
}

// floorBurst starts burstSize containers with concurrent ctr run -d and
// returns the time until all started and each one's time; then removes them.
func (e *Env) floorBurst(ctx context.Context, round int, opts func(port int) ctrcli.RunOptions) (time.Duration, []time.Duration, error) {
	each := make([]time.Duration, burstSize)
	errs := make([]error, burstSize)
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := range burstSize {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.Sys.NS.RunDetached(ctx, e.Sys.Image, fmt.Sprintf("floorb-%d-%d", round, i), opts(19300+i))
			each[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	all := time.Since(t0)
	err := errors.Join(errs...)
	for i := range burstSize {
		id := fmt.Sprintf("floorb-%d-%d", round, i)
		if st, serr := e.Sys.NS.TaskStatus(ctx, id); serr == nil && st != "RUNNING" && errs[i] == nil {
			err = errors.Join(err, fmt.Errorf("floor task %s is %q", id, st))
		}
	}
	sem := make(chan struct{}, 8)
	for i := range burstSize {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			e.Sys.NS.Remove(ctx, fmt.Sprintf("floorb-%d-%d", round, i))
		}()
	}
	wg.Wait()
	return all, each, err
}

// deployOnce times one instance of svc from the API call to RUNNING (the
// instance polled every poll), then deletes it (untimed) and waits until its container is gone.
func (e *Env) deployOnce(ctx context.Context, api *rootapi.Client, svc string, timeout, poll time.Duration) (time.Duration, error) {
	t0 := time.Now()
	n, err := api.AddInstance(ctx, svc)
	if err != nil {
		return 0, err
	}
	var took time.Duration
	err = testharness.Until(ctx, timeout, poll, fmt.Sprintf("instance %d RUNNING", n), func() (bool, string) {
		in, ok, err := api.Instance(ctx, svc, n)
		if err != nil {
			return false, err.Error()
		}
		if ok && rootapi.Running(in) {
			took = time.Since(t0)
			return true, ""
		}
		return false, in.Status + " " + in.StatusDetail
	})
	if err != nil {
		return 0, err
	}
	if err := api.DeleteInstance(ctx, svc, n); err != nil {
		return 0, err
	}
	return took, e.waitNoContainers(ctx, instanceFilter(wire.InstanceKey(svc, n)), time.Minute)
}
