// Package netcoord turns the network coordinates the tiers exchange
// (wire.Coordinate) into round-trip estimates, with the Vivaldi model of
// github.com/hashicorp/serf/coordinate, and aggregates them per cluster.
package netcoord

import (
	"math"
	"time"

	"github.com/hashicorp/serf/coordinate"
	"github.com/thicket-edge/thicket/contract/wire"
)

// Config is the Vivaldi configuration every tier uses: Serf's defaults
// (8 dimensions, a height for access links).
func Config() *coordinate.Config {
	c := coordinate.DefaultConfig()
	c.Dimensionality = wire.MaxCoordinateDims
	return c
}

// ToWire converts a Serf coordinate.
func ToWire(c *coordinate.Coordinate) *wire.Coordinate {
	if c == nil {
		return nil
	}
	return &wire.Coordinate{Vec: append([]float64(nil), c.Vec...), Error: c.Error, Adjustment: c.Adjustment, Height: c.Height}
}

// FromWire converts a wire coordinate; nil when it is not valid.
func FromWire(c *wire.Coordinate) *coordinate.Coordinate {
	if !c.Valid() {
		return nil
	}
	return &coordinate.Coordinate{Vec: append([]float64(nil), c.Vec...), Error: c.Error, Adjustment: c.Adjustment, Height: c.Height}
}

// Estimate is the estimated round trip between two coordinates, as Serf's
// Coordinate.DistanceTo computes it (without copying them: schedulers call
// it for every candidate); ok is false when either is missing or invalid or
// they differ in dimensions.
func Estimate(a, b *wire.Coordinate) (rtt time.Duration, ok bool) {
	if !a.Valid() || !b.Valid() || len(a.Vec) != len(b.Vec) {
		return 0, false
	}
	var sq float64
	for i, v := range a.Vec {
		d := v - b.Vec[i]
		sq += d * d
	}
	dist := math.Sqrt(sq) + a.Height + b.Height
	if adjusted := dist + a.Adjustment + b.Adjustment; adjusted > 0 {
		dist = adjusted
	}
	return time.Duration(dist * 1e9), true
}

// Centroid is the mean of the valid coordinates among cs that share the
// first valid one's dimensions (nil when there is none): a cluster's
// coordinate is its nodes' centroid.
func Centroid(cs ...*wire.Coordinate) *wire.Coordinate {
	var out *wire.Coordinate
	n := 0
	for _, c := range cs {
		if !c.Valid() || out != nil && len(c.Vec) != len(out.Vec) {
			continue
		}
		if out == nil {
			out = &wire.Coordinate{Vec: make([]float64, len(c.Vec))}
		}
		for i, v := range c.Vec {
			out.Vec[i] += v
		}
		out.Error += c.Error
		out.Adjustment += c.Adjustment
		out.Height += c.Height
		n++
	}
	if out == nil {
		return nil
	}
	f := 1 / float64(n)
	for i := range out.Vec {
		out.Vec[i] *= f
	}
	out.Error *= f
	out.Adjustment *= f
	out.Height *= f
	return out
}
