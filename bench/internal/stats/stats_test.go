package stats

import (
	"math"
	"testing"
	"time"
)

func TestSummaries(t *testing.T) {
	for _, tc := range []struct {
		in             Samples
		median, p95, m float64
	}{
		{Samples{3, 1, 2}, 2, 3, 3},
		{Samples{4, 1, 3, 2}, 2.5, 4, 4},
		{func() Samples {
			s := make(Samples, 100)
			for i := range s {
				s[i] = float64(100 - i)
			}
			return s
		}(), 50.5, 95, 100},
		{Samples{7}, 7, 7, 7},
	} {
		if got := tc.in.Median(); got != tc.median {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.median)
		}
		if got := tc.in.P95(); got != tc.p95 {
			t.Errorf("P95(%v) = %v, want %v", tc.in, got, tc.p95)
		}
		if got := tc.in.Max(); got != tc.m {
			t.Errorf("Max(%v) = %v, want %v", tc.in, got, tc.m)
		}
	}
	if !math.IsNaN(Samples(nil).Median()) || !math.IsNaN(Samples(nil).P95()) {
		t.Error("empty samples must summarise to NaN")
	}
	if got := Durations([]time.Duration{1500 * time.Microsecond}); got[0] != 1.5 {
		t.Errorf("Durations: %v ms, want 1.5", got[0])
	}
	if !math.IsNaN(Ratio(1, 0)) || Ratio(3, 2) != 1.5 {
		t.Error("Ratio")
	}
}
