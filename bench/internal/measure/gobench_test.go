package measure

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/bench/internal/gobench"
	"github.com/thicket-edge/thicket/bench/internal/report"
)

func TestDatapaths(t *testing.T) {
	out := `pkg: github.com/thicket-edge/thicket/net_manager/internal/bench
BenchmarkCrossNodeTCP/underlay-2   694  2129788 ns/op  1969.35 MB/s  4.954 rtt_µs
BenchmarkCrossNodeTCP/overlay-2    576  2199350 ns/op  1907.07 MB/s  2500 path_MB/s  1.950 rtt_ratio  9.788 rtt_µs  0.836 tput_ratio  0.70 tput_ratio_q1  1.10 tput_ratio_q3  1838 underlay_MB/s
BenchmarkCrossNodeTCP/overlay-2    576  2199350 ns/op  1807.07 MB/s  2400 path_MB/s  1.850 rtt_ratio  9.788 rtt_µs  0.816 tput_ratio  0.80 tput_ratio_q1  1.20 tput_ratio_q3  1838 underlay_MB/s
BenchmarkCrossNodeTCP/overlay-2    576  2199350 ns/op  1857.07 MB/s  2450 path_MB/s  1.900 rtt_ratio  9.788 rtt_µs  0.990 tput_ratio  0.90 tput_ratio_q1  1.30 tput_ratio_q3  1838 underlay_MB/s
BenchmarkCrossNodeTCP/service-2    514  2098228 ns/op  984.7 MB/s  10 rtt_µs
BenchmarkApply1000x3-2   46  23456586 ns/op
BenchmarkIsolationCost/overlay-2  452  2575516 ns/op  1628.53 MB/s  0.9256 brnf_ratio  0.9983 isolation_ratio  1.008 isolation_rtt_ratio  1600 isolated_MB/s  1342 open_MB/s
`
	paths := datapaths(gobench.Parse(out))
	if len(paths) != 3 {
		t.Fatalf("got %d paths: %+v", len(paths), paths)
	}
	u, o, s := paths[0], paths[1], paths[2]
	if !u.underlay || u.tputRatio != 1 {
		t.Errorf("underlay: %+v", u)
	}
	if !o.paired || o.tputRatio != 0.836 || o.rttRatio != 1.9 || o.tput != 1857.07 || o.tputUnit != "MB/s" {
		t.Errorf("overlay (paired medians): %+v", o)
	}
	// The spread: the pairs' quartiles are medians over the repetitions,
	// the repetitions' range their lowest and highest tput_ratio.
	if o.pairQ1 != 0.8 || o.pairQ3 != 1.2 || o.repMin != 0.816 || o.repMax != 0.99 {
		t.Errorf("overlay (spread): %+v", o)
	}
	if s.paired || math.Abs(s.tputRatio-0.5) > 1e-3 || math.Abs(s.rttRatio-10/4.954) > 1e-9 || !math.IsNaN(s.pairQ1) || !math.IsNaN(s.repMin) {
		t.Errorf("service (against the underlay benchmark): %+v", s)
	}
	if got := fmtPctRange(o.pairQ1, o.pairQ3); got != "80–120 %" {
		t.Errorf("quartiles shown as %q", got)
	}
	if got := fmtPctRange(s.pairQ1, s.pairQ3); got != "–" {
		t.Errorf("no quartiles shown as %q", got)
	}
}

// TestIsolationCost: the isolation benchmark's paths get their own table
// (medians over repetitions) and the target is judged on the lowest
// throughput ratio; without such a benchmark the target is not measured.
func TestIsolationCost(t *testing.T) {
	out := `BenchmarkCrossNodeTCP/overlay-2    576  2199350 ns/op  1907.07 MB/s  1.950 rtt_ratio  9.788 rtt_µs  0.836 tput_ratio  1838 underlay_MB/s
BenchmarkIsolationCost/overlay-2  452  2575516 ns/op  1628.53 MB/s  0.90 brnf_ratio  0.99 isolation_ratio  1.01 isolation_rtt_ratio  1600 isolated_MB/s  1300 open_MB/s
BenchmarkIsolationCost/overlay-2  452  2575516 ns/op  1628.53 MB/s  1.00 brnf_ratio  0.97 isolation_ratio  1.02 isolation_rtt_ratio  1400 isolated_MB/s  1500 open_MB/s
BenchmarkIsolationCost/overlay-2  452  2575516 ns/op  1628.53 MB/s  1.10 brnf_ratio  1.05 isolation_ratio  1.03 isolation_rtt_ratio  1500 isolated_MB/s  1400 open_MB/s
BenchmarkIsolationCost/service-2  452  2575516 ns/op  1628.53 MB/s  1.00 brnf_ratio  0.93 isolation_ratio  1.01 isolation_rtt_ratio  1500 isolated_MB/s  1400 open_MB/s
`
	for _, tc := range []struct {
		name, out, measured, verdict string
		rows                         [][]string
	}{
		{"missed", out, "93 % of without (lowest path throughput ratio)", report.Missed, [][]string{
			{"IsolationCost/overlay", "1500 MB/s", "1400 MB/s", "99 %", "×1.02", "100 %"},
			{"IsolationCost/service", "1500 MB/s", "1400 MB/s", "93 %", "×1.01", "100 %"},
		}},
		{"met", strings.Replace(out, "0.93 isolation_ratio", "0.96 isolation_ratio", 1), "96 % of without (lowest path throughput ratio)", report.Met, nil},
		{"no benchmark", strings.Split(out, "\n")[0], "", report.NotMeasured, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s report.Section
			target := isolationCost(&s, gobench.Parse(tc.out))
			if target.Measured != tc.measured || target.Verdict != tc.verdict {
				t.Errorf("target: %+v, want %q, %s", target, tc.measured, tc.verdict)
			}
			if tc.rows != nil && (len(s.Tables) != 1 || !reflect.DeepEqual(s.Tables[0].Rows, tc.rows)) {
				t.Errorf("tables: %+v, want rows %v", s.Tables, tc.rows)
			}
		})
	}
}
