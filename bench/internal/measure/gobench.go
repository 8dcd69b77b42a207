package measure

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/thicket-edge/thicket/bench/internal/gobench"
	"github.com/thicket-edge/thicket/bench/internal/report"
	"github.com/thicket-edge/thicket/bench/internal/stats"
)

const placementsBudget = 5000.0 // per second over 1,000 nodes, docs/targets.md

// Scheduler runs the scheduler's Go benchmarks: placements per second of
// the cluster scheduler (PickNode, PlaceAll) and the root scheduler
// (PickCluster, PlaceAllClusters).

// overlayBudget is the target (docs/targets.md): overlay TCP throughput as a share
// of the underlay's.
const overlayBudget = 0.9

// isolationBudget is the target (docs/targets.md) of what tenant isolation
// costs: overlay throughput with it as a share of the same without it.
const isolationBudget = 0.95

func Scheduler(ctx context.Context, e *Env) (out Outcome) {
	count := 5
	if e.Short {
		count = 1
	}
	s := &out.Section
	s.Title = "6. Scheduler throughput"
	cmd := fmt.Sprintf("go test -run '^$' -bench . -count %d ./scheduler/", count)
	s.Method = []string{fmt.Sprintf("`%s` from the workspace root: the pure schedulers over synthetic fleets (mixed sizes, architectures, "+
		"virtualizations, 0-90 %% reserved). `PickNode<N>` is one cluster-scheduler decision over N nodes, `PickCluster/<C>x<n>` one root decision over C "+
		"clusters of n nodes, `PlaceAll*` 1,000 instances placed one after the other. Median (and lowest) of the %d repetitions.", cmd, count)}
	target := report.Target{What: "placements per second, 1,000 nodes", Anchor: "—", Target: "≥ 5,000", Verdict: report.NotMeasured}
	defer func() { out.Targets = append(out.Targets, target) }()
	res, raw, err := gobench.Run(ctx, e.GoBin, e.Repo, []string{"-count", strconv.Itoa(count)}, "./scheduler/")
	if err != nil {
		s.Err = fmt.Errorf("%w\n%s", err, raw)
	}
	names, by := gobench.ByName(res)
	t := report.Table{Header: []string{"benchmark", "ns/op (median)", "placements/s (median)", "placements/s (lowest)"}}
	for _, n := range names {
		var nsop, rate stats.Samples
		for _, r := range by[n] {
			if v, ok := r.Metric("ns/op"); ok {
				nsop = append(nsop, v)
			}
			if v, ok := r.Metric("placements/s"); ok {
				rate = append(rate, v)
			}
		}
		t.Rows = append(t.Rows, []string{n, fmt.Sprintf("%.0f", nsop.Median()), report.Rate(rate.Median()), report.Rate(minOf(rate))})
		if n == "PickNode1000" {
			target.Measured = fmt.Sprintf("%s (`PickNode1000`, median)", report.Rate(rate.Median()))
			target.Verdict = report.Verdict(rate.Median() >= placementsBudget)
		}
	}
	s.Tables = []report.Table{t}
	s.Notes = []string{"The raw lines:\n\n```\n" + benchLines(res) + "```"}
	return
}

func minOf(s stats.Samples) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	m := s[0]
	for _, v := range s {
		m = min(m, v)
	}
	return m
}

func benchLines(res []gobench.Result) string {
	var b strings.Builder
	for _, r := range res {
		b.WriteString(r.Line + "\n")
	}
	return b.String()
}

// Overlay includes the net manager's datapath benchmark, when there is one:
// TCP throughput and round-trip time through the overlay (and the service
// IP) as ratios to the underlay.
func Overlay(ctx context.Context, e *Env) (out Outcome) {
	count := 5
	if e.Short {
		count = 1
	}
	s := &out.Section
	s.Title = "7. Overlay datapath"
	// The isolation row follows the overlay row in the summary (deferred
	// calls run last first).
	var iso report.Target
	defer func() { out.Targets = append(out.Targets, iso) }()
	cmd := fmt.Sprintf("go test -run '^$' -bench . -count %d ./net_manager/...", count)
	s.Method = []string{fmt.Sprintf("`%s` from the workspace root, median of the repetitions. A benchmark's own paired ratios "+
		"(`tput_ratio`, `rtt_ratio`: the path against underlay transfers interleaved with it in the same run) are used where it reports them; "+
		"otherwise a path is compared with the result of the same unit of the benchmark named `underlay`. Throughput: higher is better; "+
		"round-trip time: lower is better. The target is judged on the lowest throughput ratio of the paths through the overlay.", cmd),
		"**Paired throughput ratios** (`BenchmarkCrossNodeTCP`): per repetition and path, 12 pairs of 256 MiB transfers, each on a new connection, " +
			"one on the path and one on the underlay, the order alternating ABBA (path first, underlay first, underlay first, path first, …); " +
			"`tput_ratio` is the median of the pairs' ratios, the table's ratio the median of the repetitions'. Beside it the noise: " +
			"the pairs' quartiles (`tput_ratio_q1`, `tput_ratio_q3`, medians over the repetitions: half of single pairs fall in between) and " +
			"the range of the repetitions' medians. The throughput column is the sub-benchmark's own (one connection for about a second); " +
			"`path_MB/s` and `underlay_MB/s` in the raw lines are the medians of the pairs' transfers."}
	target := report.Target{What: "cross-node TCP through the overlay", Anchor: "reference: userspace UDP proxy", Target: fmt.Sprintf("≥ %.0f %% of the underlay", overlayBudget*100),
		Verdict: report.NotMeasured}
	defer func() { out.Targets = append(out.Targets, target) }()
	res, raw, err := gobench.Run(ctx, e.GoBin, e.Repo, []string{"-count", strconv.Itoa(count)}, "./net_manager/...")
	if err != nil {
		s.Err = fmt.Errorf("%w\n%s", err, raw)
	}
	paths := datapaths(res)
	worst := math.NaN()
	t := report.Table{Header: []string{"path", "throughput", "RTT", "throughput ÷ underlay", "pairs' ratios: quartiles",
		"repetitions' ratios: range", "RTT ÷ underlay", "ratios"}}
	for _, p := range paths {
		ratios := "paired"
		if !p.paired {
			ratios = "against the underlay benchmark"
		}
		if p.underlay {
			ratios = "reference"
		}
		t.Rows = append(t.Rows, []string{p.name, fmtValue(p.tput, p.tputUnit), fmtValue(p.rtt, p.rttUnit),
			fmtPct(p.tputRatio), fmtPctRange(p.pairQ1, p.pairQ3), fmtPctRange(p.repMin, p.repMax), fmtRatio(p.rttRatio), ratios})
		if !p.underlay && !math.IsNaN(p.tputRatio) && (math.IsNaN(worst) || p.tputRatio < worst) {
			worst = p.tputRatio
		}
	}
	if len(paths) == 0 {
		target.Note = "net_manager has no overlay datapath benchmark"
		s.Notes = append(s.Notes, "**Not measured:** `net_manager` has no datapath benchmark (TCP throughput and RTT, underlay against overlay).")
	} else {
		s.Tables = append(s.Tables, t)
	}
	if !math.IsNaN(worst) {
		target.Measured = fmt.Sprintf("%.0f %% of the underlay (lowest path throughput ratio)", worst*100)
		target.Verdict = report.Verdict(worst >= overlayBudget)
	}
	iso = isolationCost(s, res)
	if len(res) > 0 {
		s.Notes = append(s.Notes, "All `net_manager` benchmark lines:\n\n```\n"+benchLines(res)+"```")
	}
	return
}

// isolationCost adds to s the table of the benchmarks that report
// isolation_ratio (BenchmarkIsolationCost: the overlay paths with tenant
// isolation against the same without it) and returns the target's row.
func isolationCost(s *report.Section, res []gobench.Result) report.Target {
	target := report.Target{What: "what tenant isolation costs: overlay throughput", Anchor: "the same paths with `thicket-net --no-tenant-isolation`",
		Target: fmt.Sprintf("≥ %.0f %% of without", isolationBudget*100), Verdict: report.NotMeasured}
	paths := isolationPaths(res)
	if len(paths) == 0 {
		target.Note = "net_manager has no isolation benchmark"
		s.Notes = append(s.Notes, "**Not measured:** what tenant isolation costs (`net_manager` has no benchmark reporting `isolation_ratio`).")
		return target
	}
	s.Method = append(s.Method, "**Overlay throughput with vs without tenant isolation** (`BenchmarkIsolationCost`, second table): both nodes hold the nftables table; "+
		"*with*: thicket-net's default, the guards of two tenants and 100 more of 10 addresses each, bridged IPv4 through netfilter; "+
		"*without*: `--no-tenant-isolation`; *br_netfilter off*: without, and bridged IPv4 not passed through netfilter. "+
		"Per repetition, rounds of one 64 MiB transfer and one RTT measurement in each of the three configurations "+
		"(switched between transfers, the order rotating through all six); the ratios are the medians of the rounds' ratios, "+
		"then the median of the repetitions. The target is judged on the lowest throughput ratio.")
	t := report.Table{Header: []string{"path", "with isolation", "without", "throughput with ÷ without", "RTT with ÷ without",
		"throughput without ÷ br_netfilter off"}}
	worst := math.NaN()
	for _, p := range paths {
		t.Rows = append(t.Rows, []string{p.name, fmtValue(p.with, "MB/s"), fmtValue(p.without, "MB/s"), fmtPct(p.ratio),
			fmtRatio(p.rttRatio), fmtPct(p.brnfRatio)})
		if !math.IsNaN(p.ratio) && (math.IsNaN(worst) || p.ratio < worst) {
			worst = p.ratio
		}
	}
	s.Tables = append(s.Tables, t)
	if !math.IsNaN(worst) {
		target.Measured = fmt.Sprintf("%.0f %% of without (lowest path throughput ratio)", worst*100)
		target.Verdict = report.Verdict(worst >= isolationBudget)
	}
	return target
}

// isolationPath is one path of an isolation benchmark, medians over
// repetitions.
type isolationPath struct {
	name                       string
	with, without              float64 // MB/s
	ratio, rttRatio, brnfRatio float64
}

// isolationPaths finds the benchmarks reporting isolation_ratio.
func isolationPaths(res []gobench.Result) []isolationPath {
	names, by := gobench.ByName(res)
	var out []isolationPath
	for _, n := range names {
		if !reports(by[n], "isolation_ratio") {
			continue
		}
		out = append(out, isolationPath{name: n,
			with: medianOf(by[n], "isolated_MB/s"), without: medianOf(by[n], "open_MB/s"),
			ratio: medianOf(by[n], "isolation_ratio"), rttRatio: medianOf(by[n], "isolation_rtt_ratio"),
			brnfRatio: medianOf(by[n], "brnf_ratio")})
	}
	return out
}

// reports tells whether any of rs reports unit.
func reports(rs []gobench.Result, unit string) bool {
	for _, r := range rs {
		if _, ok := r.Metric(unit); ok {
			return true
		}
	}
	return false
}

// medianOf is the median of unit over rs (NaN if none reports it).
func medianOf(rs []gobench.Result, unit string) float64 {
	var v stats.Samples
	for _, r := range rs {
		if x, ok := r.Metric(unit); ok {
			v = append(v, x)
		}
	}
	return v.Median()
}

// datapath is one path of a datapath benchmark, medians over repetitions.
type datapath struct {
	name                string
	underlay, paired    bool
	tput, rtt           float64
	tputUnit, rttUnit   string
	tputRatio, rttRatio float64
	// The spread of the paired throughput ratios (NaN when not reported):
	// quartiles of a repetition's pairs (medians over repetitions) and the
	// range of the repetitions' tput_ratio.
	pairQ1, pairQ3 float64
	repMin, repMax float64
}

func isThroughput(u string) bool {
	u = strings.ToLower(u)
	return strings.HasSuffix(u, "/s") && !strings.Contains(u, "underlay") && !strings.HasPrefix(u, "path_") &&
		(strings.Contains(u, "bit") || strings.Contains(u, "b/s") || strings.Contains(u, "byte"))
}

func isRTT(u string) bool {
	u = strings.ToLower(u)
	return strings.HasPrefix(u, "rtt") && !strings.Contains(u, "ratio")
}

// datapaths finds the benchmarks reporting a throughput or a round-trip
// time; a name containing "underlay" is the reference. Those reporting
// isolation_ratio compare configurations of one path, not paths, and are
// left to isolationPaths.
func datapaths(res []gobench.Result) []datapath {
	names, by := gobench.ByName(res)
	median := medianOf
	var out []datapath
	for _, n := range names {
		if reports(by[n], "isolation_ratio") {
			continue
		}
		p := datapath{name: n, underlay: strings.Contains(strings.ToLower(n), "underlay"), tput: math.NaN(), rtt: math.NaN(),
			tputRatio: math.NaN(), rttRatio: math.NaN(), pairQ1: math.NaN(), pairQ3: math.NaN(), repMin: math.NaN(), repMax: math.NaN()}
		for _, m := range by[n][0].Metrics {
			switch {
			case isThroughput(m.Unit) && p.tputUnit == "":
				p.tputUnit, p.tput = m.Unit, median(by[n], m.Unit)
			case isRTT(m.Unit) && p.rttUnit == "":
				p.rttUnit, p.rtt = m.Unit, median(by[n], m.Unit)
			case m.Unit == "tput_ratio":
				p.tputRatio, p.paired = median(by[n], m.Unit), true
				p.repMin, p.repMax = rangeOf(by[n], m.Unit)
			case m.Unit == "tput_ratio_q1":
				p.pairQ1 = median(by[n], m.Unit)
			case m.Unit == "tput_ratio_q3":
				p.pairQ3 = median(by[n], m.Unit)
			case m.Unit == "rtt_ratio":
				p.rttRatio, p.paired = median(by[n], m.Unit), true
			}
		}
		if p.tputUnit != "" || p.rttUnit != "" {
			out = append(out, p)
		}
	}
	var ref *datapath
	for i := range out {
		if out[i].underlay {
			ref = &out[i]
			out[i].tputRatio, out[i].rttRatio = 1, 1
		}
	}
	for i := range out {
		p := &out[i]
		if p.underlay || ref == nil {
			continue
		}
		if math.IsNaN(p.tputRatio) && p.tputUnit == ref.tputUnit {
			p.tputRatio = stats.Ratio(p.tput, ref.tput)
		}
		if math.IsNaN(p.rttRatio) && p.rttUnit == ref.rttUnit {
			p.rttRatio = stats.Ratio(p.rtt, ref.rtt)
		}
	}
	return out
}

func fmtValue(v float64, unit string) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + " " + unit
}

func fmtPct(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.0f %%", v*100)
}

// rangeOf is the lowest and highest unit over rs (NaN if none reports it).
func rangeOf(rs []gobench.Result, unit string) (lo, hi float64) {
	lo, hi = math.NaN(), math.NaN()
	for _, r := range rs {
		if x, ok := r.Metric(unit); ok {
			if math.IsNaN(lo) || x < lo {
				lo = x
			}
			if math.IsNaN(hi) || x > hi {
				hi = x
			}
		}
	}
	return lo, hi
}

func fmtPctRange(lo, hi float64) string {
	if math.IsNaN(lo) || math.IsNaN(hi) {
		return "–"
	}
	return fmt.Sprintf("%.0f–%.0f %%", lo*100, hi*100)
}

func fmtRatio(v float64) string { return report.Ratio(v) }
