package measure

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/bench/internal/procstat"
	"github.com/thicket-edge/thicket/bench/internal/report"
	"github.com/thicket-edge/thicket/bench/internal/rootapi"
	"github.com/thicket-edge/thicket/bench/internal/system"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/logwriter"
)

// Targets (docs/targets.md).
const (
	workerRSSBudget  = 30.0  // MB
	workerCPUBudget  = 1.0   // % of a core
	controlRSSBudget = 100.0 // MB
)

const footprintInstances = 20

// Footprint measures resident memory and CPU of an idle worker agent
// (thicket-node + thicket-net) with 0 and 20 instances, and of the
// control plane (thicket-root + thicket-cluster, embedded store and broker).
func Footprint(ctx context.Context, e *Env) (out Outcome) {
	window, settle := 60*time.Second, 15*time.Second
	if e.Short {
		window, settle = 10*time.Second, 5*time.Second
	}
	s := &out.Section
	s.Title = "3. Footprint"
	s.Method = []string{fmt.Sprintf("A fresh root and cluster (embedded FerretDB store and MQTT broker) and one worker running `thicket-node` with `thicket-net` "+
		"(the overlay), in its own network namespace. After %s of settling, VmRSS (`/proc/<pid>/status`) and CPU time (utime+stime of `/proc/<pid>/stat`) "+
		"are sampled every second for %s: RSS as median and p95 of the samples, CPU as the share of one core over the whole window "+
		"(and the p95 of the 1-s intervals). Then %d instances of the test container (an idle HTTP server) are deployed and, after settling, "+
		"measured again. containerd, its shims and the containers are not counted (they are the runtime, not Thicket's agent); "+
		"the log writers are (`thicket-log-writer`, one per container, started by its shim: Thicket's code), in rows of their own, "+
		"and the target's note gives them. PSS (`Pss` of `/proc/<pid>/smaps_rollup`) divides each page among the processes that map it: "+
		"summed over the log writers, which share one program file, it counts its pages once where RSS counts them in each. "+
		"CPU time comes in 10 ms clock ticks: a 1-s sample resolves 1 %% of a core, the whole window 1 %% ÷ its seconds.",
		settle, window, footprintInstances)}
	worker := func(n int) report.Target {
		return report.Target{What: fmt.Sprintf("worker agent idle (node engine + net manager), %d instances", n),
			Anchor: "reference: 100 MB; K3s agent 275 MB", Target: "≤ 30 MB RSS, < 1 % of a core", Verdict: report.NotMeasured}
	}
	targets := []report.Target{worker(0), worker(footprintInstances),
		{What: "root + cluster idle, embedded DB and broker", Anchor: "reference: 1 GB", Target: fmt.Sprintf("≤ %.0f MB RSS", controlRSSBudget), Verdict: report.NotMeasured}}
	defer func() { out.Targets = append(out.Targets, targets...) }()

	st, err := e.startStack(ctx, "footprint", system.ClusterOptions{})
	if err != nil {
		s.Err = err
		return
	}
	defer st.stop()
	if s.Err = e.addNodes(ctx, st, system.NodeOptions{Overlay: true, MemoryMB: 8192}, 21); s.Err != nil {
		return
	}
	node := st.nodes[0]
	groups := []procstat.Group{
		{Name: "thicket-node", PIDs: []int{node.Engine.PID()}},
		{Name: "thicket-net", PIDs: []int{node.Net.PID()}},
		{Name: "worker agent (node + net)", PIDs: []int{node.Engine.PID(), node.Net.PID()}},
		{Name: "thicket-root", PIDs: []int{st.root.Proc.PID()}},
		{Name: "thicket-cluster", PIDs: []int{st.cluster.Proc.PID()}},
		{Name: "control plane (root + cluster)", PIDs: []int{st.root.Proc.PID(), st.cluster.Proc.PID()}},
	}
	table := report.Table{Header: []string{"process", "instances", "RSS median", "RSS p95", "PSS median", "CPU (window)", "CPU p95 (1 s)"}}
	measure := func(instances int, groups []procstat.Group) (map[string]procstat.Usage, error) {
		sleep(ctx, settle)
		u, err := procstat.Measure(ctx, groups, window, time.Second)
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			x := u[g.Name]
			table.Rows = append(table.Rows, []string{g.Name, fmt.Sprint(instances), report.MB(x.RSSMB.Median()), report.MB(x.RSSMB.P95()),
				report.MB(x.PSSMB.Median()), report.Pct(x.TotalCPUPercent), report.Pct(x.CPUPercent.P95())})
		}
		return u, nil
	}
	judgeWorker := func(t *report.Target, u procstat.Usage) {
		w := u
		t.Measured = fmt.Sprintf("%s RSS (p95 %s), %s CPU", report.MB(w.RSSMB.Median()), report.MB(w.RSSMB.P95()), report.Pct(w.TotalCPUPercent))
		okRSS, okCPU := w.RSSMB.Median() <= workerRSSBudget, w.TotalCPUPercent < workerCPUBudget
		t.Verdict = report.Verdict(okRSS && okCPU)
		switch {
		case !okRSS && !okCPU:
			t.Note = "RSS and CPU over"
		case !okRSS:
			t.Note = "RSS over"
		case !okCPU:
			t.Note = "CPU over"
		}
	}
	defer func() { s.Tables = append(s.Tables, table) }()

	idle, err := measure(0, groups)
	if err != nil {
		s.Err = err
		return
	}
	judgeWorker(&targets[0], idle["worker agent (node + net)"])
	control := idle["control plane (root + cluster)"]
	targets[2].Measured = fmt.Sprintf("%s RSS (p95 %s), %s CPU; with one idle worker", report.MB(control.RSSMB.Median()),
		report.MB(control.RSSMB.P95()), report.Pct(control.TotalCPUPercent))
	targets[2].Verdict = report.Verdict(control.RSSMB.Median() <= controlRSSBudget)

	api := st.root.API
	appID, ids, err := api.CreateApp(ctx, "footprint", []rootapi.ServiceSpec{
		{Name: "idle", Image: e.Sys.Image, MemoryMB: 16, Environment: []string{"INSTANCE=idle"}},
	})
	if err != nil {
		s.Err = err
		return
	}
	svc := ids["idle"]
	cleanup := func() {
		cctx := context.WithoutCancel(ctx)
		api.DeleteApplication(cctx, appID)
		// Instances leave with their network namespaces before the node stops.
		e.waitNoContainers(cctx, node.ContainerFilter(), 2*time.Minute)
	}
	defer cleanup()
	for range footprintInstances {
		if _, s.Err = api.AddInstance(ctx, svc); s.Err != nil {
			return
		}
	}
	if s.Err = testharness.Until(ctx, 5*time.Minute, 250*time.Millisecond, fmt.Sprintf("%d instances RUNNING", footprintInstances), func() (bool, string) {
		sv, err := api.Service(ctx, svc)
		if err != nil {
			return false, err.Error()
		}
		running := 0
		for _, in := range sv.InstanceList {
			if rootapi.Running(in) {
				running++
			}
		}
		return running == footprintInstances, sv.StatusDetail
	}); s.Err != nil {
		return
	}
	// The log writers of this node's containers (their log files are in
	// its data directory).
	writers, err := procstat.Find(func(args []string) bool {
		return len(args) == 3 && args[1] == logwriter.Arg && strings.HasPrefix(args[2], node.DataDir+string(filepath.Separator))
	})
	if err != nil {
		s.Err = err
		return
	}
	if len(writers) != footprintInstances {
		s.Err = fmt.Errorf("%d log writers for %d instances", len(writers), footprintInstances)
		return
	}
	agent := []int{node.Engine.PID(), node.Net.PID()}
	groups = append(groups,
		procstat.Group{Name: fmt.Sprintf("log writers (%d, one per instance)", len(writers)), PIDs: writers},
		procstat.Group{Name: "worker agent + log writers", PIDs: append(agent, writers...)})
	busy, err := measure(footprintInstances, groups)
	if err != nil {
		s.Err = err
		return
	}
	judgeWorker(&targets[1], busy["worker agent (node + net)"])
	lw, all := busy[groups[len(groups)-2].Name], busy["worker agent + log writers"]
	targets[1].Note = strings.TrimPrefix(targets[1].Note+fmt.Sprintf("; the %d log writers add %s RSS, %s PSS (with them: %s PSS)",
		len(writers), report.MB(lw.RSSMB.Median()), report.MB(lw.PSSMB.Median()), report.MB(all.PSSMB.Median())), "; ")
	return
}
