package measure

import (
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/bench/internal/procstat"
	"github.com/thicket-edge/thicket/bench/internal/report"
)

func TestManySizes(t *testing.T) {
	for _, c := range []struct {
		short              bool
		clusters, nodes    int
		wantC, wantPerNode int
	}{
		{false, 0, 0, 5, 1000},
		{true, 0, 0, 5, 50},
		{false, 0, 50, 5, 50},
		{true, 2, 300, 2, 300},
	} {
		if gc, gn := manySizes(c.short, c.clusters, c.nodes); gc != c.wantC || gn != c.wantPerNode {
			t.Errorf("manySizes(%v, %d, %d) = %d, %d; want %d, %d", c.short, c.clusters, c.nodes, gc, gn, c.wantC, c.wantPerNode)
		}
	}
}

func TestManyTarget(t *testing.T) {
	result := func(clusters, per int, rootCPU, reportsPerSec float64, active int) manyResult {
		r := manyResult{clusters: clusters, perCluster: per, reportsPerSec: reportsPerSec, activeAfter: active,
			usage: map[string]procstat.Usage{"thicket-root": {TotalCPUPercent: rootCPU}, allClusters: {TotalCPUPercent: 40}}}
		for i := range clusters {
			n := "many" + string(rune('1'+i))
			r.names = append(r.names, n)
			r.usage[n] = procstat.Usage{TotalCPUPercent: float64(5 + i)}
		}
		return r
	}
	for _, c := range []struct {
		name     string
		r        manyResult
		verdict  string
		note     string
		measured string
	}{
		{"met", result(5, 1000, 30, 4990, 5000), report.Met, "", "root 30 % of a core"},
		{"root over", result(5, 1000, 70, 4990, 5000), report.Missed, "", "clusters 5.00 % to 9.00 % each, 40 % together"},
		{"root over at a lower rate", result(5, 1000, 70, 3000, 5000), report.Missed, "even at 60 %", "reports 3000/s (60 % of one per node and second)"},
		{"nodes lost", result(5, 1000, 30, 4990, 4900), report.Missed, "", "4900 of 5000 nodes active after"},
		{"rate too low", result(5, 1000, 30, 4000, 5000), report.NotMeasured, "not judged: the simulator reached only 80 %", ""},
		{"small", result(5, 50, 5, 250, 250), report.NotMeasured, "measured at 5 × 50 nodes only", "5 × 50 nodes"},
	} {
		got := manyTarget(report.Target{Verdict: report.NotMeasured}, c.r)
		if got.Verdict != c.verdict || !strings.Contains(got.Note, c.note) || !strings.Contains(got.Measured, c.measured) {
			t.Errorf("%s: got %q (note %q), measured %q", c.name, got.Verdict, got.Note, got.Measured)
		}
	}
	if got := manyTarget(report.Target{Verdict: report.NotMeasured}, manyResult{clusters: 5, perCluster: 1000}); got.Verdict != report.NotMeasured || got.Measured != "" {
		t.Errorf("nothing measured: %+v", got)
	}
}
