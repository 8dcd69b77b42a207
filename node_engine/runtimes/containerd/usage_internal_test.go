package containerd

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/containerd/cgroups/stats/v1"
	v2 "github.com/containerd/cgroups/v2/stats"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestParseMetrics(t *testing.T) {
	for _, tc := range []struct {
		name    string
		metrics interface{}
		cpu     time.Duration
		mem     uint64
	}{
		{"cgroup v1", &v1.Metrics{
			CPU:    &v1.CPUStat{Usage: &v1.CPUUsage{Total: 2_500_000_000, User: 2_000_000_000}},
			Memory: &v1.MemoryStat{Usage: &v1.MemoryEntry{Usage: 10 << 20}, TotalInactiveFile: 3 << 20, InactiveFile: 1 << 20},
		}, 2500 * time.Millisecond, 7 << 20},
		{"cgroup v1, cache exceeds usage", &v1.Metrics{
			Memory: &v1.MemoryStat{Usage: &v1.MemoryEntry{Usage: 1 << 20}, TotalInactiveFile: 2 << 20},
		}, 0, 0},
		{"cgroup v1, empty", &v1.Metrics{}, 0, 0},
		{"cgroup v2", &v2.Metrics{
			CPU:    &v2.CPUStat{UsageUsec: 1_500_000},
			Memory: &v2.MemoryStat{Usage: 20 << 20, InactiveFile: 5 << 20, Anon: 12 << 20},
		}, 1500 * time.Millisecond, 15 << 20},
		{"cgroup v2, empty", &v2.Metrics{}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := typeurl.MarshalAny(tc.metrics)
			if err != nil {
				t.Fatal(err)
			}
			cpu, mem, err := parseMetrics(data)
			if err != nil || cpu != tc.cpu || mem != tc.mem {
				t.Errorf("parseMetrics = %v, %d, %v; want %v, %d", cpu, mem, err, tc.cpu, tc.mem)
			}
		})
	}
	for _, tc := range []struct {
		name string
		data typeurl.Any
		want string
	}{
		{"nil", nil, "without data"},
		{"unknown type", &anypb.Any{TypeUrl: "example.com/Nothing", Value: []byte{1}}, "example.com/Nothing"},
		{"other type", mustAny(t, &v1.CPUStat{}), "unsupported metrics type io.containerd.cgroups.v1.CPUStat"},
		{"corrupt", &anypb.Any{TypeUrl: "io.containerd.cgroups.v1.Metrics", Value: []byte{0xff}}, "decode metrics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := parseMetrics(tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseMetrics = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func mustAny(t *testing.T, v interface{}) typeurl.Any {
	a, err := typeurl.MarshalAny(v)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestCPUPercent(t *testing.T) {
	r := &Runtime{samples: map[string]cpuSample{}}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	sample := func(pid uint32, cpu time.Duration, after time.Duration) cpuSample {
		return cpuSample{pid: pid, cpu: cpu, at: t0.Add(after), taken: t0.Add(after)}
	}
	for i, step := range []struct {
		id     string
		forget bool
		s      cpuSample
		want   float64
	}{
		{id: "a", s: sample(1, time.Second, 0), want: 0},                        // first sample
		{id: "a", s: sample(1, 2500*time.Millisecond, time.Second), want: 150},  // 1.5 s in 1 s
		{id: "a", s: sample(1, 2600*time.Millisecond, 2*time.Second), want: 10}, // 0.1 s in 1 s
		{id: "a", s: sample(1, 2700*time.Millisecond, 2*time.Second), want: 10}, // not newer: the last rate
		{id: "b", s: sample(7, 5*time.Second, 2*time.Second), want: 0},          // another key
		{id: "a", s: sample(1, 2600*time.Millisecond, 4*time.Second), want: 0},  // counter went back
		{id: "a", s: sample(1, 3600*time.Millisecond, 6*time.Second), want: 50}, // 1 s in 2 s
		{id: "a", s: sample(2, 3700*time.Millisecond, 7*time.Second), want: 0},  // another task (restart)
		{id: "a", forget: true},
		{id: "a", s: sample(2, 3800*time.Millisecond, 8*time.Second), want: 0}, // forgotten
		{id: "a", s: sample(2, 3900*time.Millisecond, 9*time.Second), want: 10},
		{id: "b", s: sample(7, 5*time.Second, 12*time.Second), want: 0}, // idle
	} {
		if step.forget {
			r.forgetUsage(step.id)
			continue
		}
		if got := r.cpuPercent(step.id, step.s); got < step.want-1e-9 || got > step.want+1e-9 {
			t.Errorf("step %d: cpuPercent = %v, want %v", i, got, step.want)
		}
	}

	// pruneUsage keeps listed containers and samples taken after the list began.
	r.samples["c"] = sample(3, 0, 20*time.Second)
	r.pruneUsage(map[string]bool{"a": true}, t0.Add(15*time.Second))
	if _, ok := r.samples["a"]; !ok {
		t.Error("pruneUsage dropped a listed container")
	}
	if _, ok := r.samples["b"]; ok {
		t.Error("pruneUsage kept an unlisted container's old sample")
	}
	if _, ok := r.samples["c"]; !ok {
		t.Error("pruneUsage dropped a sample newer than the list")
	}
}
