package wire

import (
	"fmt"
	"math"
	"net"
	"net/netip"
)

// Bounds of what a tier believes of the tier below (a node of its
// capacity and usage, a cluster of its nodes'): a report beyond them is a
// lie or a bug, and is refused.
const (
	// MaxMilliCPU: 4096 cores.
	MaxMilliCPU = 4096 * 1000
	// MaxMemoryMB: 64 TiB.
	MaxMemoryMB = 64 << 20
	// MaxVGPUs per node.
	MaxVGPUs = 1024
)

// CheckCapacity says whether r is a node's capacity within the bounds:
// nothing negative, at most MaxMilliCPU, MaxMemoryMB and MaxVGPUs.
func CheckCapacity(r Resources) error {
	switch {
	case r.MilliCPU < 0 || r.MemoryMB < 0 || r.VGPUs < 0:
		return fmt.Errorf("capacity %+v: negative", r)
	case r.MilliCPU > MaxMilliCPU:
		return fmt.Errorf("capacity: %d milli-CPU is more than %d cores", r.MilliCPU, MaxMilliCPU/1000)
	case r.MemoryMB > MaxMemoryMB:
		return fmt.Errorf("capacity: %d MB of memory is more than %d TiB", r.MemoryMB, MaxMemoryMB>>20)
	case r.VGPUs > MaxVGPUs:
		return fmt.Errorf("capacity: %d vGPUs is more than %d", r.VGPUs, MaxVGPUs)
	}
	return nil
}

// CheckNodeUsage says whether a node's usage is within bounds: CPU and
// memory percentages in 0..100.
func CheckNodeUsage(n NodeInfo) error {
	if !percent(n.CPUPercent, 100) || !percent(n.MemoryPercent, 100) {
		return fmt.Errorf("usage: cpu %v%%, memory %v%%: not in 0..100", n.CPUPercent, n.MemoryPercent)
	}
	return nil
}

// CheckInstanceUsage says whether an instance's usage is within bounds: CPU
// in 0..100 per core of MaxMilliCPU, memory in 0..MaxMemoryMB.
func CheckInstanceUsage(st InstanceStatus) error {
	if !percent(st.CPUPercent, 100*MaxMilliCPU/1000) || st.MemoryMB < 0 || st.MemoryMB > MaxMemoryMB {
		return fmt.Errorf("usage: cpu %v%%, memory %d MB: out of bounds", st.CPUPercent, st.MemoryMB)
	}
	return nil
}

func percent(v, limit float64) bool {
	return !math.IsNaN(v) && v >= 0 && v <= limit
}

// CheckEndpoint says whether a node's VXLAN endpoint is one peers may send
// to: a unicast VTEP MAC, a public IPv4 address (not unspecified, not
// multicast) and a port in 0..65535 (0: the peers' own). Whether its subnet
// is the node's is for the tier that assigned it to say.
func (n *NodeNetwork) CheckEndpoint() error {
	mac, err := net.ParseMAC(n.VTEPMAC)
	if err != nil || len(mac) != 6 || mac[0]&1 != 0 {
		return fmt.Errorf("VTEP MAC %q is not a unicast MAC address", n.VTEPMAC)
	}
	ip, err := netip.ParseAddr(n.PublicIP)
	if err != nil || !ip.Is4() || ip.IsUnspecified() || ip.IsMulticast() {
		return fmt.Errorf("public IP %q is not an IPv4 unicast address", n.PublicIP)
	}
	if n.PublicPort < 0 || n.PublicPort > 65535 {
		return fmt.Errorf("public port %d not in 0..65535", n.PublicPort)
	}
	if n.ProbePort < 0 || n.ProbePort > 65535 {
		return fmt.Errorf("probe port %d not in 0..65535", n.ProbePort)
	}
	return nil
}
