// Package stats summarises repeated measurements: median and 95th
// percentile (nearest rank), and ratios between them.
package stats

import (
	"math"
	"slices"
	"time"
)

// Samples are repeated measurements of one quantity, in one unit.
type Samples []float64

// Durations converts durations to samples in milliseconds.
func Durations(ds []time.Duration) Samples {
	s := make(Samples, len(ds))
	for i, d := range ds {
		s[i] = float64(d) / float64(time.Millisecond)
	}
	return s
}

// Quantile is the nearest-rank q-quantile (0 < q ≤ 1): the smallest sample
// with at least q of all samples at or below it. NaN without samples.
func (s Samples) Quantile(q float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Median is the middle sample (the mean of the two middle ones for an
// even count). NaN without samples.
func (s Samples) Median() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// P95 is the nearest-rank 95th percentile; with fewer than 20 samples it is
// the largest.
func (s Samples) P95() float64 { return s.Quantile(0.95) }

// Max is the largest sample. NaN without samples.
func (s Samples) Max() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Max(s)
}

// Mean is the arithmetic mean. NaN without samples.
func (s Samples) Mean() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, v := range s {
		sum += v
	}
	return sum / float64(len(s))
}

// Ratio is a / b, NaN when b is zero or either is NaN.
func Ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}
