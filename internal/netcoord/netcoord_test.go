package netcoord

import (
	"math"
	"testing"
	"time"

	"github.com/hashicorp/serf/coordinate"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestConvergeOnLine runs Vivaldi over three nodes on a line (a-b 10 ms,
// b-c 40 ms, a-c 50 ms) and checks the estimates come within 10% of the
// configured round trips, through the wire form.
func TestConvergeOnLine(t *testing.T) {
	rtt := map[[2]int]time.Duration{{0, 1}: 10 * time.Millisecond, {1, 2}: 40 * time.Millisecond, {0, 2}: 50 * time.Millisecond}
	get := func(i, j int) time.Duration {
		if i > j {
			i, j = j, i
		}
		return rtt[[2]int{i, j}]
	}
	clients := make([]*coordinate.Client, 3)
	for i := range clients {
		var err error
		if clients[i], err = coordinate.NewClient(Config()); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"a", "b", "c"}
	for round := 0; round < 200; round++ {
		for i := range clients {
			for j := range clients {
				if i != j {
					if _, err := clients[i].Update(names[j], clients[j].GetCoordinate(), get(i, j)); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	for i := range clients {
		for j := i + 1; j < len(clients); j++ {
			est, ok := Estimate(ToWire(clients[i].GetCoordinate()), ToWire(clients[j].GetCoordinate()))
			want := get(i, j)
			if !ok || math.Abs(float64(est-want)) > 0.1*float64(want) {
				t.Errorf("%s-%s: estimate %v (ok %v), want %v ± 10%%", names[i], names[j], est, ok, want)
			}
		}
	}
}

func TestEstimateRefusesBadCoordinates(t *testing.T) {
	good := &wire.Coordinate{Vec: []float64{0.01, 0}, Height: 1e-5}
	tests := []struct {
		name string
		a, b *wire.Coordinate
	}{
		{"missing", good, nil},
		{"dimensions differ", good, &wire.Coordinate{Vec: []float64{0, 0, 0}}},
		{"not finite", good, &wire.Coordinate{Vec: []float64{math.NaN(), 0}}},
		{"negative height", good, &wire.Coordinate{Vec: []float64{0, 0}, Height: -1}},
		{"too many dimensions", &wire.Coordinate{Vec: make([]float64, 9)}, &wire.Coordinate{Vec: make([]float64, 9)}},
	}
	for _, tt := range tests {
		if _, ok := Estimate(tt.a, tt.b); ok {
			t.Errorf("%s: Estimate ok, want refused", tt.name)
		}
	}
	if d, ok := Estimate(good, &wire.Coordinate{Vec: []float64{0.01, 0.02}, Height: 1e-5}); !ok || d != 20020*time.Microsecond {
		t.Errorf("Estimate = %v, %v; want 20.02ms", d, ok)
	}
}

// TestEstimateIsSerfs: Estimate computes what Serf's DistanceTo does.
func TestEstimateIsSerfs(t *testing.T) {
	a := &wire.Coordinate{Vec: []float64{0.01, -0.02, 0.003}, Height: 2e-4, Adjustment: -1e-3, Error: 0.3}
	for _, b := range []*wire.Coordinate{
		{Vec: []float64{-0.04, 0.01, 0}, Height: 1e-5, Adjustment: 5e-4},
		{Vec: []float64{0.01, -0.02, 0.003}, Height: 1e-5, Adjustment: -0.5}, // adjusted below 0: not applied
	} {
		got, ok := Estimate(a, b)
		if want := FromWire(a).DistanceTo(FromWire(b)); !ok || got != want {
			t.Errorf("Estimate = %v, %v; Serf says %v", got, ok, want)
		}
	}
}

func TestCentroid(t *testing.T) {
	got := Centroid(
		&wire.Coordinate{Vec: []float64{0, 2}, Height: 1, Error: 0.5},
		nil,
		&wire.Coordinate{Vec: []float64{2, 0}, Height: 3, Error: 1.5},
		&wire.Coordinate{Vec: []float64{9, 9, 9}}, // other dimensions: left out
	)
	want := wire.Coordinate{Vec: []float64{1, 1}, Height: 2, Error: 1}
	if got == nil || got.Vec[0] != want.Vec[0] || got.Vec[1] != want.Vec[1] || got.Height != want.Height || got.Error != want.Error {
		t.Fatalf("Centroid = %+v, want %+v", got, want)
	}
	if Centroid(nil, &wire.Coordinate{}) != nil {
		t.Fatal("Centroid of nothing valid is not nil")
	}
}
