package measure

import (
	"math"
	"testing"

	"github.com/thicket-edge/thicket/bench/internal/gobench"
)

func TestDatapaths(t *testing.T) {
	out := `pkg: github.com/thicket-edge/thicket/net_manager/internal/bench
BenchmarkCrossNodeTCP/underlay-2   694  2129788 ns/op  1969.35 MB/s  4.954 rtt_µs
BenchmarkCrossNodeTCP/overlay-2    576  2199350 ns/op  1907.07 MB/s  1.950 rtt_ratio  9.788 rtt_µs  0.836 tput_ratio  1838 underlay_MB/s
BenchmarkCrossNodeTCP/overlay-2    576  2199350 ns/op  1807.07 MB/s  1.850 rtt_ratio  9.788 rtt_µs  0.816 tput_ratio  1838 underlay_MB/s
BenchmarkCrossNodeTCP/service-2    514  2098228 ns/op  984.7 MB/s  10 rtt_µs
BenchmarkApply1000x3-2   46  23456586 ns/op
`
	paths := datapaths(gobench.Parse(out))
	if len(paths) != 3 {
		t.Fatalf("got %d paths: %+v", len(paths), paths)
	}
	u, o, s := paths[0], paths[1], paths[2]
	if !u.underlay || u.tputRatio != 1 {
		t.Errorf("underlay: %+v", u)
	}
	if !o.paired || math.Abs(o.tputRatio-0.826) > 1e-9 || math.Abs(o.rttRatio-1.9) > 1e-9 || o.tput != 1857.07 || o.tputUnit != "MB/s" {
		t.Errorf("overlay (paired medians): %+v", o)
	}
	if s.paired || math.Abs(s.tputRatio-0.5) > 1e-3 || math.Abs(s.rttRatio-10/4.954) > 1e-9 {
		t.Errorf("service (against the underlay benchmark): %+v", s)
	}
}
