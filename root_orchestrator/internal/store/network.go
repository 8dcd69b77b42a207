package store

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
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

// blockReservation marks a block as a cluster's; the _id is the block, so
// the database refuses a second reservation of it.
type blockReservation struct {
	Block     string    `bson:"_id"`
	ClusterID string    `bson:"cluster_id"`
	CreatedAt time.Time `bson:"created_at"`
}

// clusterBlock returns the cluster's block, reserving the first free one
// when it has none.
func (s *Store) clusterBlock(ctx context.Context, clusterID string) (string, error) {
	var mine blockReservation
	err := s.blocks.FindOne(ctx, bson.M{"cluster_id": clusterID}).Decode(&mine)
	if err == nil {
		return mine.Block, nil
	}
	if err != mongo.ErrNoDocuments {
		return "", fmt.Errorf("find address block: %w", err)
	}
	plan := s.plan
	if plan.BlockBits < plan.Network.Bits() || plan.BlockBits > 30 {
		return "", fmt.Errorf("address plan: /%d blocks do not fit %s", plan.BlockBits, plan.Network)
	}
	size := uint32(1) << (32 - plan.BlockBits)
	base := plan.Network.Masked().Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	count := uint32(1) << (plan.BlockBits - plan.Network.Bits())
	for i := uint32(0); i < count; i++ {
		v := start + i*size
		block := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), plan.BlockBits).String()
		_, err := s.blocks.InsertOne(ctx, blockReservation{Block: block, ClusterID: clusterID, CreatedAt: s.now()})
		if err == nil {
			return block, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return "", fmt.Errorf("reserve address block: %w", err)
		}
	}
	return "", fmt.Errorf("no free /%d address block left in %s", plan.BlockBits, plan.Network)
}

// ClusterNetwork returns what a cluster needs of the overlay: its address
// block, the nodes of the other clusters and the service table.
func (s *Store) ClusterNetwork(ctx context.Context, clusterID string) (string, wire.Network, error) {
	block, err := s.clusterBlock(ctx, clusterID)
	if err != nil {
		return "", wire.Network{}, err
	}
	all, err := s.peers.get(ctx, s.allPeers)
	if err != nil {
		return "", wire.Network{}, err
	}
	net := wire.Network{Peers: []wire.NodeNetwork{}}
	for _, p := range all {
		if p.ClusterID != clusterID {
			net.Peers = append(net.Peers, p)
		}
	}
	if net.Services, err = s.serviceTable.get(ctx, s.ServiceTable); err != nil {
		return "", wire.Network{}, err
	}
	return block, net, nil
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// brief keeps a value read from the store for a moment (ttl), for reads
// that every cluster's sync and desired-set watch repeat. drop makes the
// next get read the store again.
type brief[T any] struct {
	mu  sync.Mutex
	ttl time.Duration
	at  time.Time
	v   T
}

func (c *brief[T]) get(ctx context.Context, load func(context.Context) (T, error)) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < c.ttl {
		return c.v, nil
	}
	v, err := load(ctx)
	if err != nil {
		return v, err
	}
	c.v, c.at = v, time.Now()
	return v, nil
}

func (c *brief[T]) drop() {
	c.mu.Lock()
	c.at = time.Time{}
	c.mu.Unlock()
}

// ServiceTable maps every service IP to the running instances behind it,
// with the node and cluster of each (for closest routing).
func (s *Store) ServiceTable(ctx context.Context) ([]wire.ServiceRoute, error) {
	svcs, err := s.findServices(ctx, bson.M{})
	if err != nil {
		return nil, err
	}
	out := []wire.ServiceRoute{}
	for _, svc := range svcs {
		var backends []wire.Backend
		for _, in := range svc.InstanceList {
			if in.Status == wire.StatusRunning && in.InstanceIP != "" {
				backends = append(backends, wire.Backend{IP: in.InstanceIP, NodeID: in.WorkerID, ClusterID: in.ClusterID})
			}
		}
		if backends == nil {
			backends = []wire.Backend{}
		}
		if svc.RRIP != "" {
			out = append(out, wire.ServiceRoute{IP: svc.RRIP, Mode: wire.RouteRoundRobin, ServiceID: svc.MicroserviceID, Backends: backends})
		}
		if svc.ClosestIP != "" {
			out = append(out, wire.ServiceRoute{IP: svc.ClosestIP, Mode: wire.RouteClosest, ServiceID: svc.MicroserviceID, Backends: backends})
		}
	}
	slices.SortFunc(out, func(a, b wire.ServiceRoute) int { return cmpStr(a.IP, b.IP) })
	return out, nil
}

// allPeers returns the overlay addresses of every active node of every
// active cluster, sorted by node id.
func (s *Store) allPeers(ctx context.Context) ([]wire.NodeNetwork, error) {
	clusters, err := s.ClusterRecords(ctx)
	if err != nil {
		return nil, err
	}
	peers := []wire.NodeNetwork{}
	for _, cl := range clusters {
		if !cl.Active {
			continue
		}
		for _, n := range cl.NodeInfo {
			if n.Active && n.Network != nil && n.Network.Subnet != "" {
				p := *n.Network
				p.ClusterID = cl.ID
				peers = append(peers, p)
			}
		}
	}
	slices.SortFunc(peers, func(a, b wire.NodeNetwork) int { return cmpStr(a.NodeID, b.NodeID) })
	return peers, nil
}
