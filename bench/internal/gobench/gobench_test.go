package gobench

import "testing"

const sample = `goos: linux
goarch: amd64
pkg: github.com/thicket-edge/thicket/scheduler
cpu: Intel(R) Xeon(R) Processor
BenchmarkPickNode1000-2           	   61197	     19182 ns/op	     52133 placements/s	      16 B/op	       1 allocs/op
BenchmarkPickCluster/100x10-2     	   69727	     16386 ns/op	     61026 placements/s	      16 B/op	       1 allocs/op
BenchmarkLogs
    bench_test.go:12: some log
BenchmarkOverlayTCP/underlay-2   	       1	1000000000 ns/op	  9400 Mbit/s
PASS
ok  	github.com/thicket-edge/thicket/scheduler	9.396s
`

func TestParse(t *testing.T) {
	res := Parse(sample)
	if len(res) != 3 {
		t.Fatalf("got %d results: %+v", len(res), res)
	}
	r := res[0]
	if r.Name != "PickNode1000" || r.N != 61197 || r.Package != "github.com/thicket-edge/thicket/scheduler" {
		t.Errorf("first result %+v", r)
	}
	if v, ok := r.Metric("placements/s"); !ok || v != 52133 {
		t.Errorf("placements/s = %v %v", v, ok)
	}
	if res[1].Name != "PickCluster/100x10" {
		t.Errorf("sub-benchmark name %q", res[1].Name)
	}
	if v, _ := res[2].Metric("Mbit/s"); v != 9400 || res[2].Name != "OverlayTCP/underlay" {
		t.Errorf("custom unit: %+v", res[2])
	}
	names, by := ByName(append(res, res[0]))
	if len(names) != 3 || len(by["PickNode1000"]) != 2 {
		t.Errorf("ByName: %v %v", names, by)
	}
}
