package state

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/geo"
)

// What the root believes of a cluster's report: a cluster may speak only
// of its own nodes, within the address blocks the root gave it, and of the
// instances assigned to it (statuses of others are ignored and counted in
// thicket_root_statuses_ignored_total).
//
//   - a node's overlay address names a subnet inside the cluster's blocks
//     that overlaps no other node of the cluster, a unicast VTEP MAC and
//     an IPv4 public address outside the instance network; otherwise the
//     node keeps the address accepted before, or has none (no peer routes
//     to it);
//   - a node's capacity and usage are within wire's bounds; otherwise the
//     values accepted before stand;
//   - an instance IP lies inside the cluster's blocks, else the one accepted
//     before stands (or none); an instance's usage beyond bounds reads zero.
//
// Each refusal is counted in thicket_root_reports_rejected_total{reason}
// and logged once per cluster and reason; the rest of the report applies.

var mRejected = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: "thicket_root", Name: "reports_rejected_total",
	Help: "Parts of cluster reports the root refused, by reason: subnet (a node's subnet outside the cluster's blocks or overlapping another node's), instance_ip (outside the cluster's blocks), capacity and usage (beyond bounds). Never applied.",
}, []string{"reason"})

// reject counts a refused part of a cluster's report and logs it the first
// time for the cluster and reason.
func (t *Txn) reject(c *Cluster, reason, what string, attrs ...any) {
	mRejected.WithLabelValues(reason).Inc()
	k := c.ID + "/" + reason
	if t.s.rejected[k] {
		return
	}
	t.s.rejected[k] = true
	t.s.log.Warn("a cluster's report contradicts what the root assigned it; that part is refused (logged once per cluster and reason)",
		append([]any{"cluster", c.Name, "reason", reason, "refused", what}, attrs...)...)
}

// clusterBlocks returns a cluster's address blocks, parsed.
func clusterBlocks(r reader, clusterID string) []netip.Prefix {
	var out []netip.Prefix
	for _, b := range blocksOf(r, clusterID) {
		if p, err := netip.ParsePrefix(b); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func within(blocks []netip.Prefix, p netip.Prefix) bool {
	return slices.ContainsFunc(blocks, func(b netip.Prefix) bool { return b.Bits() <= p.Bits() && b.Contains(p.Addr()) })
}

// validateNode refuses what a cluster says of one of its nodes beyond its
// blocks or bounds, keeping what was accepted before (old, or nil). taken
// holds the subnets of the cluster's nodes by node id; it gets this node's.
func (t *Txn) validateNode(c *Cluster, blocks []netip.Prefix, taken map[string]netip.Prefix, old *Node, info *wire.NodeInfo) {
	var prev wire.NodeInfo
	if old != nil {
		prev = old.NodeInfo
	}
	if err := wire.CheckCapacity(info.Capacity); err != nil {
		t.reject(c, "capacity", err.Error(), "node", info.Name)
		info.Capacity = prev.Capacity
	}
	if err := wire.CheckNodeUsage(*info); err != nil {
		t.reject(c, "usage", err.Error(), "node", info.Name)
		info.CPUPercent, info.MemoryPercent = prev.CPUPercent, prev.MemoryPercent
	}
	if err := sla.CheckLabels(info.Labels); err != nil {
		t.reject(c, "labels", err.Error(), "node", info.Name)
		info.Labels = prev.Labels
	}
	if info.Coordinate != nil && !info.Coordinate.Valid() {
		t.reject(c, "coordinate", "a network coordinate out of bounds", "node", info.Name)
		info.Coordinate = nil
	}
	if _, err := geo.Parse(info.Location); err != nil || len(info.Location) > 100 {
		t.reject(c, "location", fmt.Sprintf("location %.100q", info.Location), "node", info.Name)
		info.Location = ""
	}
	delete(taken, info.ID)
	if info.Network == nil {
		return
	}
	// An address accepted before overlaps no other node's (each later one
	// was checked against it): only its blocks are checked again, so that
	// a sync of N changed nodes costs N, not N × the cluster's nodes.
	against := taken
	if prev.Network != nil && wire.SameNetwork(prev.Network, info.Network) {
		against = nil
	}
	if why := t.checkNodeNetwork(blocks, against, info.Network); why != "" {
		t.reject(c, "subnet", why, "node", info.Name, "blocks", blocks)
		info.Network = nil
		if prev.Network != nil && t.checkNodeNetwork(blocks, taken, prev.Network) == "" {
			info.Network = prev.Network
		}
	}
	if info.Network != nil {
		taken[info.ID] = netip.MustParsePrefix(info.Network.Subnet)
	}
}

// checkNodeNetwork says what is wrong with a node's overlay address, or "".
func (t *Txn) checkNodeNetwork(blocks []netip.Prefix, taken map[string]netip.Prefix, nw *wire.NodeNetwork) string {
	p, err := netip.ParsePrefix(nw.Subnet)
	if err != nil || p != p.Masked() || !p.Addr().Is4() || p.Bits() > 30 {
		return fmt.Sprintf("subnet %q", nw.Subnet)
	}
	if !within(blocks, p) {
		return fmt.Sprintf("subnet %v outside the cluster's blocks", p)
	}
	for id, q := range taken {
		if q.Overlaps(p) {
			return fmt.Sprintf("subnet %v overlaps node %s's %v", p, id, q)
		}
	}
	if err := nw.CheckEndpoint(); err != nil {
		return err.Error()
	}
	if ip := netip.MustParseAddr(nw.PublicIP); t.s.plan.Network.Contains(ip) {
		return fmt.Sprintf("public IP %s inside the instance network", ip)
	}
	return ""
}

// validateStatus refuses an instance IP outside the cluster's blocks (prev,
// the one accepted before, stands if it lies inside) and usage beyond
// bounds.
func (t *Txn) validateStatus(c *Cluster, st *wire.InstanceStatus, prev string) {
	if st.InstanceIP != "" {
		blocks := clusterBlocks(t.r(), c.ID)
		inside := func(s string) bool {
			a, err := netip.ParseAddr(s)
			return err == nil && within(blocks, netip.PrefixFrom(a, 32))
		}
		if !inside(st.InstanceIP) {
			t.reject(c, "instance_ip", "an instance IP outside the cluster's blocks", "instance", st.Key, "instance_ip", st.InstanceIP)
			st.InstanceIP = ""
			if inside(prev) {
				st.InstanceIP = prev
			}
		}
	}
	if err := wire.CheckInstanceUsage(*st); err != nil {
		t.reject(c, "usage", err.Error(), "instance", st.Key)
		st.CPUPercent, st.MemoryMB = 0, 0
	}
	if len(st.Jobs) > 0 && sla.ValidateJobs("jobs", st.Jobs) != nil {
		t.reject(c, "jobs", "a job set that is no valid job list", "instance", st.Key)
		st.JobsVersion, st.Jobs = 0, nil
	}
}
