package manager

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/geo"
)

// What the cluster believes of a node's report (NodeRestriction for
// Thicket): a node may speak only of itself and of what it was assigned.
//
//   - its overlay address (NodeInfo.Network) names the subnet the cluster
//     assigned it, a unicast VTEP MAC and an IPv4 public address outside the
//     cluster's blocks; otherwise the node keeps the address last accepted
//     (if it still names its subnet) or has none, and no peer routes to it;
//   - its capacity and usage are within wire's bounds; otherwise the last
//     accepted ones stand;
//   - its network coordinate is valid (wire.Coordinate.Valid) and its
//     location parses (internal/geo); otherwise it has none;
//   - an instance's status counts only for an instance placed on it (or
//     one it ran before: see adoptable); its instance IP lies inside its
//     subnet, else the status applies without it (no service routes to
//     it); its usage is within bounds, else it reads zero.
//
// Each refusal is counted in thicket_cluster_reports_rejected_total{reason}
// and logged once per node and reason; the rest of the report applies.

// reject counts a refused part of a node's report, and logs it the first
// time for the node and reason. Caller holds mu.
func (m *Manager) reject(n *node, reason, what string, attrs ...any) {
	mRejected.WithLabelValues(reason).Inc()
	if n.rejected[reason] {
		return
	}
	if n.rejected == nil {
		n.rejected = map[string]bool{}
	}
	n.rejected[reason] = true
	m.log.Warn("a node's report contradicts what the cluster assigned it; that part is refused (logged once per node and reason)",
		append([]any{"node", n.Name, "reason", reason, "refused", what}, attrs...)...)
}

// validateInfo refuses what a node's report says of itself beyond what the
// cluster gave it or beyond bounds, keeping what was accepted before.
// Caller holds mu.
func (m *Manager) validateInfo(n *node, info *wire.NodeInfo) {
	if err := wire.CheckCapacity(info.Capacity); err != nil {
		m.reject(n, "capacity", err.Error())
		info.Capacity = n.Info.Capacity
	}
	if err := wire.CheckNodeUsage(*info); err != nil {
		m.reject(n, "usage", err.Error())
		info.CPUPercent, info.MemoryPercent = n.Info.CPUPercent, n.Info.MemoryPercent
	}
	if err := sla.CheckLabels(info.Labels); err != nil {
		m.reject(n, "labels", err.Error())
		info.Labels = n.Info.Labels
	}
	if info.Coordinate != nil && !info.Coordinate.Valid() {
		m.reject(n, "coordinate", "a network coordinate out of bounds")
		info.Coordinate = nil
	}
	if _, err := geo.Parse(info.Location); err != nil || len(info.Location) > 100 {
		m.reject(n, "location", fmt.Sprintf("location %.100q", info.Location))
		info.Location = ""
	}
	if info.Network == nil {
		return
	}
	if n.Subnet == "" {
		info.Network = nil // the node is still to get one (or its old one back): not yet
		return
	}
	if why := m.checkNodeNetwork(n, info.Network); why != "" {
		m.reject(n, "subnet", why, "assigned", n.Subnet)
		info.Network = nil
		if old := n.Info.Network; old != nil && old.Subnet == n.Subnet {
			info.Network = old
		}
	}
}

// checkNodeNetwork says what is wrong with a node's reported overlay
// address, or "". Caller holds mu.
func (m *Manager) checkNodeNetwork(n *node, nw *wire.NodeNetwork) string {
	p, err := netip.ParsePrefix(nw.Subnet)
	if err != nil || p.String() != n.Subnet {
		return fmt.Sprintf("subnet %q", nw.Subnet)
	}
	if err := nw.CheckEndpoint(); err != nil {
		return err.Error()
	}
	if ip := netip.MustParseAddr(nw.PublicIP); slices.ContainsFunc(m.blocks, func(b netip.Prefix) bool { return b.Contains(ip) }) {
		return fmt.Sprintf("public IP %s inside the cluster's blocks", ip)
	}
	return ""
}

// validateStatus drops what an instance's status claims beyond the node:
// an instance IP outside its subnet (the one accepted before, prev,
// stands if it lies inside), usage beyond bounds. Caller holds mu.
func (m *Manager) validateStatus(n *node, st *wire.InstanceStatus, prev string) {
	if st.InstanceIP != "" && !inSubnet(st.InstanceIP, n.Subnet) {
		m.reject(n, "instance_ip", "an instance IP outside its subnet", "instance", st.Key, "instance_ip", st.InstanceIP, "subnet", n.Subnet)
		st.InstanceIP = ""
		if inSubnet(prev, n.Subnet) {
			st.InstanceIP = prev
		}
	}
	if err := wire.CheckInstanceUsage(*st); err != nil {
		m.reject(n, "usage", err.Error(), "instance", st.Key)
		st.CPUPercent, st.MemoryMB = 0, 0
	}
}

// inSubnet reports whether ip is a host address of subnet (not its network
// address).
func inSubnet(ip, subnet string) bool {
	a, err := netip.ParseAddr(ip)
	p, perr := netip.ParsePrefix(subnet)
	return err == nil && perr == nil && p.Contains(a) && a != p.Addr()
}

// adoptable reports whether a node may claim an instance that is placed
// nowhere, as the one running it: while this manager waits for its nodes
// after it started without state (inherited), during a node's startup
// grace (a placement not saved before a restart), or when the node ran it
// before (it was taken from it, or its last status names it). Any other
// claim is a node asking for an instance, and its spec, that the cluster
// did not give it. Caller holds mu.
func (m *Manager) adoptable(n *node, in *state.Instance) bool {
	return m.inherited[in.Key] || time.Now().Before(n.graceUntil) || in.LostFrom == n.ID || in.Status.NodeID == n.ID
}
