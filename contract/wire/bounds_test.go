package wire

import (
	"math"
	"testing"
)

func TestBounds(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		ok   bool
	}{
		{"no capacity", CheckCapacity(Resources{}), true},
		{"a big machine", CheckCapacity(Resources{MilliCPU: MaxMilliCPU, MemoryMB: MaxMemoryMB, VGPUs: MaxVGPUs}), true},
		{"a core more", CheckCapacity(Resources{MilliCPU: MaxMilliCPU + 1}), false},
		{"memory beyond", CheckCapacity(Resources{MemoryMB: MaxMemoryMB + 1}), false},
		{"vGPUs beyond", CheckCapacity(Resources{VGPUs: MaxVGPUs + 1}), false},
		{"negative cpu", CheckCapacity(Resources{MilliCPU: -1}), false},
		{"negative memory", CheckCapacity(Resources{MemoryMB: -1}), false},
		{"node usage", CheckNodeUsage(NodeInfo{CPUPercent: 100, MemoryPercent: 0}), true},
		{"node cpu beyond 100", CheckNodeUsage(NodeInfo{CPUPercent: 100.5}), false},
		{"node memory negative", CheckNodeUsage(NodeInfo{MemoryPercent: -1}), false},
		{"node cpu NaN", CheckNodeUsage(NodeInfo{CPUPercent: math.NaN()}), false},
		{"instance on 64 cores", CheckInstanceUsage(InstanceStatus{CPUPercent: 6400, MemoryMB: 1 << 20}), true},
		{"instance cpu infinite", CheckInstanceUsage(InstanceStatus{CPUPercent: math.Inf(1)}), false},
		{"instance memory beyond", CheckInstanceUsage(InstanceStatus{MemoryMB: MaxMemoryMB + 1}), false},
		{"instance memory negative", CheckInstanceUsage(InstanceStatus{MemoryMB: -1}), false},
		{"an endpoint", (&NodeNetwork{VTEPMAC: "02:00:00:00:00:01", PublicIP: "192.0.2.1", PublicPort: 4789}).CheckEndpoint(), true},
		{"multicast MAC", (&NodeNetwork{VTEPMAC: "01:00:5e:00:00:01", PublicIP: "192.0.2.1"}).CheckEndpoint(), false},
		{"short MAC", (&NodeNetwork{VTEPMAC: "aa:bb", PublicIP: "192.0.2.1"}).CheckEndpoint(), false},
		{"unspecified IP", (&NodeNetwork{VTEPMAC: "02:00:00:00:00:01", PublicIP: "0.0.0.0"}).CheckEndpoint(), false},
		{"IPv6", (&NodeNetwork{VTEPMAC: "02:00:00:00:00:01", PublicIP: "2001:db8::1"}).CheckEndpoint(), false},
		{"port beyond", (&NodeNetwork{VTEPMAC: "02:00:00:00:00:01", PublicIP: "192.0.2.1", PublicPort: 70000}).CheckEndpoint(), false},
	} {
		if (c.err == nil) != c.ok {
			t.Errorf("%s: %v; want ok %v", c.name, c.err, c.ok)
		}
	}
}

func TestCoordinateValid(t *testing.T) {
	tests := []struct {
		name string
		c    *Coordinate
		want bool
	}{
		{"nil", nil, false},
		{"empty", &Coordinate{}, false},
		{"ok", &Coordinate{Vec: []float64{0.01, 0}, Height: 1e-5}, true},
		{"too many dimensions", &Coordinate{Vec: make([]float64, MaxCoordinateDims+1)}, false},
		{"infinite", &Coordinate{Vec: []float64{math.Inf(1)}}, false},
		{"NaN error", &Coordinate{Vec: []float64{0}, Error: math.NaN()}, false},
		{"negative height", &Coordinate{Vec: []float64{0}, Height: -1}, false},
	}
	for _, tt := range tests {
		if got := tt.c.Valid(); got != tt.want {
			t.Errorf("%s: Valid = %v, want %v", tt.name, got, tt.want)
		}
	}
}
