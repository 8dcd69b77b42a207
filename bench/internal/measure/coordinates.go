package measure

import (
	"context"
	"fmt"

	"github.com/thicket-edge/thicket/bench/internal/gobench"
	"github.com/thicket-edge/thicket/bench/internal/report"
)

// Targets of the round-trip probes (docs/targets.md): the median error of
// an estimated round trip, and what probing costs a node at the default
// interval.
const (
	coordErrBudget    = 0.20 // of the configured round trip
	probePacketBudget = 1.0  // packets per second per node
	probeCPUBudget    = 0.1  // % of a core per node
)

// Coordinates runs the probes' Go benchmark: a fleet of probers whose
// links have different delays, their Vivaldi coordinates after a while
// against the configured round trips, and the probing cost per node.
func Coordinates(ctx context.Context, e *Env) (out Outcome) {
	s := &out.Section
	s.Title = "10. Network coordinates: error and probing cost"
	args := []string{"-bench", "Coordinates", "-benchtime", "1x"}
	secs := 40
	if e.Short {
		secs = 15
	}
	cmd := fmt.Sprintf("THICKET_BENCH_COORD_SECONDS=%d go test -run '^$' -bench Coordinates -benchtime 1x ./node_engine/internal/probe/", secs)
	s.Method = []string{fmt.Sprintf("`%s` from the workspace root: 16 real probers (`node_engine/internal/probe`, as thicket-node runs "+
		"them) on loopback, each behind an in-process UDP relay that adds its link's one-way delay in each direction (four sites of 0.5, "+
		"5, 15 and 40 ms: round trips of 2 to 160 ms between nodes; the kernel here has no `sch_netem`). Each probes up to 8 peers, one "+
		"every 500 ms (6 times the default rate, so that the run converges), and the coordinate of every pair is compared with the "+
		"configured round trip at the end. Packets are probes sent plus answers served; the default-interval figure scales them to "+
		"thicket-node's 3 s. CPU is the benchmark process's, relays included, per node: an upper bound.", cmd)}
	errT := report.Target{What: "network coordinates: error of an estimated round trip", Anchor: "Serf/Consul Vivaldi",
		Target: fmt.Sprintf("median ≤ %.0f %%", coordErrBudget*100), Verdict: report.NotMeasured}
	costT := report.Target{What: "round-trip probing per node, default interval", Anchor: "—",
		Target: fmt.Sprintf("≤ %.0f packet/s and ≤ %.1f %% of a core", probePacketBudget, probeCPUBudget), Verdict: report.NotMeasured}
	defer func() { out.Targets = append(out.Targets, errT, costT) }()
	env := []string{fmt.Sprintf("THICKET_BENCH_COORD_SECONDS=%d", secs)}
	res, raw, err := gobench.RunEnv(ctx, e.GoBin, e.Repo, env, args, "./node_engine/internal/probe/")
	if err != nil {
		s.Err = fmt.Errorf("%w\n%s", err, raw)
		return
	}
	if len(res) == 0 {
		s.Err = fmt.Errorf("no benchmark result:\n%s", raw)
		return
	}
	r := res[0]
	m := func(name string) float64 { v, _ := r.Metric(name); return v }
	t := report.Table{Header: []string{"error: median", "error: 90th percentile", "packets/s per node (at 500 ms)", "packets/s per node (default 3 s)", "CPU per node"}}
	t.Rows = append(t.Rows, []string{
		fmt.Sprintf("%.1f ms (%s)", m("err-ms-median"), report.Pct(m("err-%-median"))),
		fmt.Sprintf("%.1f ms (%s)", m("err-ms-p90"), report.Pct(m("err-%-p90"))),
		fmt.Sprintf("%.2f", m("packets/s/node")), fmt.Sprintf("%.2f", m("packets/s/node-default")),
		fmt.Sprintf("%.3f %% of a core", m("cpu-%/node")),
	})
	s.Tables = []report.Table{t}
	errT.Measured = fmt.Sprintf("median %.1f ms (%s), 90th percentile %.1f ms (%s)", m("err-ms-median"), report.Pct(m("err-%-median")),
		m("err-ms-p90"), report.Pct(m("err-%-p90")))
	errT.Verdict = report.Verdict(m("err-%-median") <= coordErrBudget*100)
	costT.Measured = fmt.Sprintf("%.2f packets/s, %.3f %% of a core (6× the rate: at most this)", m("packets/s/node-default"), m("cpu-%/node"))
	costT.Verdict = report.Verdict(m("packets/s/node-default") <= probePacketBudget && m("cpu-%/node") <= probeCPUBudget)
	s.Notes = []string{"The relative error is largest on the shortest round trips (a few ms between nodes of the nearest site), where " +
		"a millisecond of error is a large share. The raw line:\n\n```\n" + benchLines(res) + "```"}
	return
}
