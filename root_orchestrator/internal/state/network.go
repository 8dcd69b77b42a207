package state

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// AddressPlan is how the instance network is split: each cluster gets one
// block of BlockBits prefix length from Network, and gives each of its
// nodes a subnet from it.
type AddressPlan struct {
	Network   netip.Prefix
	BlockBits int
}

// DefaultAddressPlan: 10.64.0.0/10 in /16 blocks — 64 clusters of up to
// 256 nodes with /24 subnets (250+ instances each), clear of the service
// network 10.30.0.0/16.
var DefaultAddressPlan = AddressPlan{Network: netip.MustParsePrefix("10.64.0.0/10"), BlockBits: 16}

// Blocks returns a cluster's address blocks, first given first.
func (sn *Snapshot) Blocks(clusterID string) []string { return blocksOf(sn.r(), clusterID) }

func blocksOf(r reader, clusterID string) []string {
	bs := all[Block](r, tBlocks, "cluster", clusterID)
	slices.SortFunc(bs, func(a, b *Block) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.Prefix, b.Prefix))
	})
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Prefix
	}
	return out
}

// clusterBlock returns the cluster's first block, reserving one when it has
// none.
func (t *Txn) clusterBlock(clusterID string) (string, error) {
	if bs := blocksOf(t.r(), clusterID); len(bs) > 0 {
		return bs[0], nil
	}
	return t.newBlock(clusterID)
}

// growBlocks gives a cluster up to n more blocks (its nodes filled the ones
// it has); when the instance network has none left it says so once.
func (t *Txn) growBlocks(c *Cluster, n int) {
	n = min(n, 64) // a bound on one request; a cluster asks again
	for range n {
		p, err := t.newBlock(c.ID)
		if err != nil {
			if !t.s.exhausted[c.ID] {
				t.s.exhausted[c.ID] = true
				t.s.log.Error("instance network full: a cluster's nodes wait for subnets", "cluster", c.Name,
					"wants_blocks", n, "err", err,
					"fix", "start thicket-root with a wider --instance-network, or give each cluster bigger blocks (--block-bits), or make the cluster's node subnets smaller")
			}
			return
		}
		t.s.log.Info("cluster got another address block", "cluster", c.Name, "block", p)
	}
	delete(t.s.exhausted, c.ID)
}

// newBlock reserves the first free block of the plan for a cluster.
func (t *Txn) newBlock(clusterID string) (string, error) {
	plan := t.s.plan
	if plan.BlockBits < plan.Network.Bits() || plan.BlockBits > 30 {
		return "", fmt.Errorf("address plan: /%d blocks do not fit %s", plan.BlockBits, plan.Network)
	}
	size := uint32(1) << (32 - plan.BlockBits)
	base := plan.Network.Masked().Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	count := uint32(1) << (plan.BlockBits - plan.Network.Bits())
	for i := uint32(0); i < count; i++ {
		v := start + i*size
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), plan.BlockBits).String()
		if first[Block](t.r(), tBlocks, "id", p) == nil {
			t.put(tBlocks, KindBlock, p, &Block{Prefix: p, ClusterID: clusterID, CreatedAt: t.now}, true)
			t.net = true // the cluster's watch answers with it
			return p, nil
		}
	}
	return "", fmt.Errorf("no free /%d address block left in %s", plan.BlockBits, plan.Network)
}

// ServiceTable maps every service IP to the running instances behind it,
// with the node and cluster of each (for closest routing), by IP.
func (sn *Snapshot) ServiceTable() []wire.ServiceRoute {
	out := []wire.ServiceRoute{}
	// A service an OAM update replaces reaches the new instances too.
	successor := replacements(sn.r())
	svcs := all[Service](sn.r(), tServices, "id")
	peers := newPeerIndex(svcs, all[Application](sn.r(), tApps, "id"))
	for _, svc := range svcs {
		users, ids := peers.resolve(svc.Spec.AllowFrom)
		backends := []wire.Backend{}
		for _, id := range []string{svc.ID, successor[svc.ID]} {
			for _, in := range instancesOf(sn.r(), id) {
				if in.Status == wire.StatusRunning && in.InstanceIP != "" {
					backends = append(backends, wire.Backend{IP: in.InstanceIP, NodeID: in.NodeID, ClusterID: in.ClusterID})
				}
			}
		}
		if svc.RRIP != "" {
			out = append(out, wire.ServiceRoute{IP: svc.RRIP, Mode: wire.RouteRoundRobin, ServiceID: svc.ID, Backends: backends,
				Tenant: peers.tenant(svc), AllowUsers: users, AllowServices: ids})
		}
		if svc.ClosestIP != "" {
			out = append(out, wire.ServiceRoute{IP: svc.ClosestIP, Mode: wire.RouteClosest, ServiceID: svc.ID, Backends: backends,
				Tenant: peers.tenant(svc), AllowUsers: users, AllowServices: ids})
		}
	}
	slices.SortFunc(out, func(a, b wire.ServiceRoute) int { return cmp.Compare(a.IP, b.IP) })
	return out
}

// Peers returns the overlay addresses of every active node of every active
// cluster, by node id.
func (sn *Snapshot) Peers() []wire.NodeNetwork {
	peers := []wire.NodeNetwork{}
	for _, c := range all[Cluster](sn.r(), tClusters, "id") {
		if !c.Active {
			continue
		}
		for _, n := range all[Node](sn.r(), tNodes, "cluster", c.ID) {
			if n.Active && n.Network != nil && n.Network.Subnet != "" {
				p := *n.Network
				p.ClusterID = c.ID
				peers = append(peers, p)
			}
		}
	}
	slices.SortFunc(peers, func(a, b wire.NodeNetwork) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return peers
}

// ClusterNetwork is the overlay a cluster is told about: the nodes of the
// other clusters (of all peers) and the service table.
func ClusterNetwork(clusterID string, peers []wire.NodeNetwork, table []wire.ServiceRoute) wire.Network {
	n := wire.Network{Peers: []wire.NodeNetwork{}, Services: table}
	for _, p := range peers {
		if p.ClusterID != clusterID {
			n.Peers = append(n.Peers, p)
		}
	}
	return n
}

// NetIndex is the index of the last write that changed the overlay.
func (sn *Snapshot) NetIndex() uint64 { return sn.netIndex }

// Desired is a cluster's desired set as of a snapshot: everything (Full),
// or what changed after the generation the cluster holds.
type Desired struct {
	Full bool
	// Instances are the specs to run (all, or the new and changed ones).
	Instances []wire.InstanceSpec
	// Removed lists the keys that left the set: after the generation
	// (deltas), or all still remembered (full sets).
	Removed []string
	// NetworkChanged says whether the overlay changed after the generation.
	NetworkChanged bool
	// TokensChanged says whether the cluster's node tokens changed after
	// it (they travel whole with every answer).
	TokensChanged bool
}

// Empty reports whether a delta holds no change.
func (d *Desired) Empty() bool {
	return !d.Full && len(d.Instances) == 0 && len(d.Removed) == 0 && !d.NetworkChanged && !d.TokensChanged
}

// DesiredFor returns a cluster's desired set: the changes after generation
// after when epoch is this store's and after is still covered, else all.
func (sn *Snapshot) DesiredFor(clusterID, epoch string, after uint64, storeEpoch string) Desired {
	full := epoch != storeEpoch || after == 0 || after < sn.floor || after > sn.index
	d := Desired{Full: full, Instances: []wire.InstanceSpec{}, NetworkChanged: full || sn.netIndex > after}
	if c := sn.Cluster(clusterID); c != nil && c.TokensIndex > after {
		d.TokensChanged = true
	}
	add := func(in *Instance) {
		if svc := sn.Service(in.ServiceID); svc != nil {
			d.Instances = append(d.Instances, Spec(svc, in))
		}
	}
	for _, in := range all[Instance](sn.r(), tInstances, "cluster", clusterID) {
		if full || in.DesiredIndex > after {
			add(in)
		}
	}
	if full {
		// Taken from it while it was lost, not yet decided: it keeps them
		// until it reports (a delta never dropped them).
		for _, in := range all[Instance](sn.r(), tInstances, "lostfrom", clusterID) {
			add(in)
		}
	}
	slices.SortFunc(d.Instances, func(a, b wire.InstanceSpec) int { return cmp.Compare(a.Key, b.Key) })
	{
		// A full set lists every removal still remembered too: what it
		// lacks beyond those was not explicitly taken away, and a cluster
		// does not stop most of its instances on that alone.
		for _, ts := range all[tombstone](sn.r(), tTombs, "cluster", clusterID) {
			if !full && ts.Index <= after {
				continue
			}
			if in := sn.Instance(ts.Key); in != nil && (in.ClusterID == clusterID || in.LostFrom == clusterID) {
				continue // back in its set after it left
			}
			d.Removed = append(d.Removed, ts.Key)
		}
		slices.Sort(d.Removed)
	}
	return d
}

// PruneTombstones forgets removals older than age; clusters that hold a
// generation from before them get their full set.
func (s *Store) PruneTombstones(age time.Duration) {
	sn := s.Snapshot()
	cut := s.now().Add(-age)
	var old []*tombstone
	for _, ts := range all[tombstone](sn.r(), tTombs, "id") {
		if ts.At.Before(cut) {
			old = append(old, ts)
		}
	}
	if len(old) == 0 {
		return
	}
	_, _ = s.Write(func(t *Txn) error {
		for _, o := range old {
			// Only if no newer removal of the same instance replaced it.
			if ts := first[tombstone](t.r(), tTombs, "id", o.ID); ts != nil && ts.Index == o.Index {
				t.del(tTombs, "", ts.ID, ts)
				t.floor = max(t.floor, ts.Index+1)
			}
		}
		return nil
	})
}
