package manager

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"

	"github.com/thicket-edge/thicket/contract/wire"
)

// SetNetwork takes what the root says of the overlay: the cluster's id and
// address blocks, the nodes of other clusters and the service table.
func (m *Manager) SetNetwork(clusterID string, blocks []string, n wire.Network) {
	var ps []netip.Prefix
	for _, b := range blocks {
		if p, err := netip.ParsePrefix(b); err == nil {
			ps = append(ps, p.Masked())
		}
	}
	m.mu.Lock()
	changed := false
	if len(ps) > 0 && !slices.Equal(ps, m.blocks) {
		if len(m.blocks) > 0 && !slices.Contains(ps, m.blocks[0]) {
			m.log.Warn("the root changed this cluster's address block; keeping node subnets", "old", m.blocks, "new", ps)
		}
		m.blocks = ps
		changed = true
	}
	if clusterID != "" && clusterID != m.clusterID {
		m.clusterID = clusterID
		changed = true
	}
	if changed {
		m.allNodesDirty()
	}
	if h := hashOf(n); h != m.rootNetHash {
		m.rootNet, m.rootNetHash = n, h
		m.netDirty = true
		changed = true
	}
	m.mu.Unlock()
	if changed {
		m.Kick()
	}
}

// SetBlock sets the cluster's address block by hand (a standalone cluster).
func (m *Manager) SetBlock(block netip.Prefix) {
	m.mu.Lock()
	m.blocks = []netip.Prefix{block.Masked()}
	m.allNodesDirty()
	m.mu.Unlock()
	m.Kick()
}

// WantBlocks says how many more address blocks the cluster needs: its
// nodes without a subnet, in blocks.
func (m *Manager) WantBlocks() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.wantBlocks
}

func hashOf(v any) uint64 {
	h := fnv.New64a()
	_ = json.NewEncoder(h).Encode(v)
	return h.Sum64()
}

// allNodesDirty republishes every node's desired set. Caller holds mu.
func (m *Manager) allNodesDirty() {
	for id := range m.nodes {
		m.dirtyNode[id] = true
	}
}

// assignSubnets gives every node without one a subnet of the blocks, the
// first free one. When the blocks are full it says so once and counts the
// blocks the waiting nodes need (the root link asks for them). It returns
// the nodes to save. Caller holds mu.
func (m *Manager) assignSubnets() []*node {
	var blocks []netip.Prefix
	for _, b := range m.blocks {
		if m.subnetBits >= b.Bits() {
			blocks = append(blocks, b)
		}
	}
	if len(blocks) == 0 {
		return nil
	}
	if !m.someWithoutSubnet() {
		// Every node has its subnet (every pass but a few): nothing to
		// assign, and no node waits. The rest parses every node's subnet,
		// which cost a placement burst's passes 2 % of the cluster's CPU
		// at 1,000 nodes.
		m.noneWaiting(blocks)
		return nil
	}
	used := map[netip.Prefix]bool{}
	for _, n := range m.nodes {
		if p, err := netip.ParsePrefix(n.Subnet); err == nil {
			used[p] = true
		}
	}
	var changed []*node
	// Nodes that had a subnet before this manager knew them get it back
	// when it is one of ours (right size, in a block) and free; two asking
	// for the same one are served by name.
	asking := make([]*node, 0)
	for _, n := range m.nodes {
		if n.wantSubnet.IsValid() {
			asking = append(asking, n)
		}
	}
	slices.SortFunc(asking, func(a, b *node) int { return strings.Compare(a.Name, b.Name) })
	for _, n := range asking {
		p := n.wantSubnet
		if n.Subnet != "" || !p.IsValid() || p.Bits() != m.subnetBits || used[p] ||
			!slices.ContainsFunc(blocks, func(b netip.Prefix) bool { return b.Contains(p.Addr()) }) {
			continue
		}
		used[p] = true
		n.Subnet, n.wantSubnet = p.String(), netip.Prefix{}
		m.dirtyNode[n.ID] = true
		changed = append(changed, n)
		m.log.Info("node subnet given back", "node", n.Name, "subnet", p)
	}
	names := make([]string, 0, len(m.nodes))
	for id, n := range m.nodes {
		if n.Subnet == "" {
			names = append(names, id)
		}
	}
	slices.Sort(names) // deterministic
	size := uint32(1) << (32 - m.subnetBits)
	bi, next := 0, blocks[0].Addr()
	waiting := 0
	for i, id := range names {
		for {
			if !blocks[bi].Contains(next) {
				if bi++; bi == len(blocks) {
					waiting = len(names) - i
					break
				}
				next = blocks[bi].Addr()
			}
			p := netip.PrefixFrom(next, m.subnetBits)
			next = addU32(next, size)
			if !used[p] {
				used[p] = true
				m.nodes[id].Subnet = p.String()
				m.dirtyNode[id] = true
				changed = append(changed, m.nodes[id])
				m.log.Info("node subnet assigned", "node", m.nodes[id].Name, "subnet", p)
				break
			}
		}
		if waiting > 0 {
			break
		}
	}
	if waiting == 0 {
		m.noneWaiting(blocks)
	} else {
		perBlock := 1 << (m.subnetBits - blocks[0].Bits())
		m.wantBlocks = (waiting + perBlock - 1) / perBlock
		if !m.full {
			m.full = true
			m.log.Info("address blocks full: nodes wait for a subnet; asking the root for more blocks", "blocks", blocks,
				"nodes_waiting", waiting, "more_blocks_wanted", m.wantBlocks,
				"standalone", "a cluster without a root needs a bigger --instance-block")
		}
	}
	if len(changed) > 0 {
		m.netDirty = true // peers may change when their nodes report the subnet
	}
	return changed
}

// someWithoutSubnet reports whether a node has no subnet. Caller holds mu.
func (m *Manager) someWithoutSubnet() bool {
	for _, n := range m.nodes {
		if n.Subnet == "" {
			return true
		}
	}
	return false
}

// noneWaiting notes that no node waits for a subnet. Caller holds mu.
func (m *Manager) noneWaiting(blocks []netip.Prefix) {
	m.wantBlocks = 0
	if m.full {
		m.full = false
		m.log.Info("every node has a subnet again", "blocks", blocks)
	}
}

func addU32(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// network builds the overlay view of this cluster's nodes: every node with
// a network (this cluster's and the root's), and the service table with
// this cluster's backends taken from its own, fresher, view. Each node's
// copy leaves itself out (withoutPeer). Caller holds mu.
func (m *Manager) network() wire.Network {
	out := wire.Network{Peers: []wire.NodeNetwork{}, Services: []wire.ServiceRoute{}}
	local := map[string]bool{}
	for id, n := range m.nodes {
		local[id] = true
		if n.Info.Network == nil || n.Info.Network.Subnet == "" || !n.active {
			continue
		}
		p := *n.Info.Network
		p.NodeID, p.ClusterID = id, m.clusterID
		out.Peers = append(out.Peers, p)
	}
	for _, p := range m.rootNet.Peers {
		if !local[p.NodeID] {
			out.Peers = append(out.Peers, p)
		}
	}
	slices.SortFunc(out.Peers, func(a, b wire.NodeNetwork) int { return strings.Compare(a.NodeID, b.NodeID) })

	mine := map[string][]wire.Backend{} // service id → this cluster's running instances
	for _, in := range m.instances {
		if in.NodeID != "" && in.Status.Status == wire.StatusRunning && in.Status.InstanceIP != "" {
			at := in.NodeID
			if in.DrainFrom != "" {
				at = in.DrainFrom // the copy on the drained node serves until the new one runs
			}
			mine[in.Spec.ServiceID] = append(mine[in.Spec.ServiceID], wire.Backend{IP: in.Status.InstanceIP, NodeID: at, ClusterID: m.clusterID})
		}
	}
	for _, r := range m.rootNet.Services {
		route := wire.ServiceRoute{IP: r.IP, Mode: r.Mode, ServiceID: r.ServiceID, Backends: []wire.Backend{},
			Tenant: r.Tenant, AllowUsers: r.AllowUsers, AllowServices: r.AllowServices}
		for _, b := range r.Backends {
			if b.ClusterID != m.clusterID && !local[b.NodeID] {
				route.Backends = append(route.Backends, b)
			}
		}
		route.Backends = append(route.Backends, mine[r.ServiceID]...)
		slices.SortFunc(route.Backends, func(a, b wire.Backend) int { return strings.Compare(a.IP, b.IP) })
		out.Services = append(out.Services, route)
	}
	return out
}

// saveNodes persists nodes whose subnet was just assigned.
func (m *Manager) saveNodes(ctx context.Context, nodes []*node) error {
	for _, n := range nodes {
		m.mu.Lock()
		rec := n.Node
		m.mu.Unlock()
		if err := m.st.SaveNode(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}

// withoutPeer returns n without the peer entry of node id.
func withoutPeer(n wire.Network, id string) wire.Network {
	peers := make([]wire.NodeNetwork, 0, len(n.Peers))
	for _, p := range n.Peers {
		if p.NodeID != id {
			peers = append(peers, p)
		}
	}
	return wire.Network{Peers: peers, Services: n.Services}
}
