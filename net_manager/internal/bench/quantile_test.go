package bench

import "testing"

// TestQuantile: the quartiles reported beside tput_ratio (tput_ratio_q1,
// tput_ratio_q3), linear between the closest ranks, the input left as it was.
func TestQuantile(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{[]float64{3, 1, 2, 4}, 0.25, 1.75},
		{[]float64{3, 1, 2, 4}, 0.75, 3.25},
		{[]float64{3, 1, 2, 4}, 0.5, 2.5},
		{[]float64{1, 2, 3, 4, 5}, 0.25, 2},
		{[]float64{5}, 0.75, 5},
		{[]float64{2, 1}, 1, 2},
		{[]float64{2, 1}, 0, 1},
	} {
		in := append([]float64(nil), tc.xs...)
		if got := quantile(tc.xs, tc.q); got != tc.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", in, tc.q, got, tc.want)
		}
		if got := median(tc.xs); tc.q == 0.5 && got != tc.want {
			t.Errorf("median(%v) = %v, quantile 0.5 = %v", in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.xs[i] {
				t.Fatalf("quantile sorted its input: %v", tc.xs)
			}
		}
	}
}
