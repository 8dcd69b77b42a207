// Package probe measures round trips from this node to a few of its peers
// over the underlay (the addresses their VXLAN traffic uses) and keeps the
// node's network coordinate with Serf's Vivaldi client
// (github.com/hashicorp/serf/coordinate), as Serf and Consul do.
//
// One UDP socket both answers peers' probes and sends this node's. A probe
// is a fixed-size packet with a random nonce; the answer echoes the nonce
// and carries the responder's coordinate, which the prober's Vivaldi update
// needs. The prober takes an answer only from the address it probed and
// only with the nonce it sent, so that a host off the path cannot feed it
// made-up round trips; one on the path can delay packets whatever we do
// (a MAC would not stop that), so probes are not signed. Answers are the
// size of probes and rate-limited, so the responder amplifies nothing.
package probe

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/serf/coordinate"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/netcoord"
)

// Defaults.
const (
	DefaultPort     = 51822
	DefaultInterval = 3 * time.Second
	DefaultMaxPeers = 8
	// answerRate bounds the answers per second (with a burst of as many):
	// dozens of peers probing every few seconds need far fewer.
	answerRate = 50
)

// Config configures a Prober.
type Config struct {
	// Listen is the UDP address the responder binds, e.g. ":51822".
	Listen string
	// Interval between two probes (each to one peer, in turn).
	Interval time.Duration
	// MaxPeers bounds the peers probed: a random choice of the cluster's
	// nodes first (up to all but two of MaxPeers), the rest from other
	// clusters, so that coordinates compare across clusters.
	MaxPeers int
	// Timeout for an answer (default: the interval, at most 1 s).
	Timeout time.Duration
}

// Stats counts what a Prober did.
type Stats struct {
	Sent, Answered, Lost, Served, Dropped uint64
}

type target struct {
	id, cluster string
	addr        netip.AddrPort
}

// Prober answers and sends probes and keeps the coordinate.
type Prober struct {
	cfg    Config
	log    *slog.Logger
	client *coordinate.Client
	conn   *net.UDPConn

	mu       sync.Mutex
	peers    []target
	all      map[string]target // every peer with an address, by id
	wanted   []target          // SetWanted's, probed besides peers
	coords   map[string]*wire.Coordinate
	next     int
	measured bool
	pending  *pending
	tokens   float64
	tokensAt time.Time

	sent, answered, lost, served, dropped atomic.Uint64
}

type pending struct {
	nonce [nonceSize]byte
	addr  netip.AddrPort
	got   chan *wire.Coordinate
}

// New binds the responder's socket.
func New(cfg Config, log *slog.Logger) (*Prober, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = DefaultMaxPeers
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = min(cfg.Interval, time.Second)
	}
	client, err := coordinate.NewClient(netcoord.Config())
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	addr, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("probe: listen address %q: %w", cfg.Listen, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	return &Prober{cfg: cfg, log: log, client: client, conn: conn, tokens: answerRate, tokensAt: time.Now()}, nil
}

// Port is the UDP port the responder listens on.
func (p *Prober) Port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

// Stats returns the counters.
func (p *Prober) Stats() Stats {
	return Stats{Sent: p.sent.Load(), Answered: p.answered.Load(), Lost: p.lost.Load(), Served: p.served.Load(), Dropped: p.dropped.Load()}
}

// Coordinate is the node's coordinate, nil until a probe was answered.
func (p *Prober) Coordinate() *wire.Coordinate {
	p.mu.Lock()
	measured := p.measured
	p.mu.Unlock()
	if !measured {
		return nil
	}
	return netcoord.ToWire(p.client.GetCoordinate())
}

// SetPeers gives the overlay peers (the node itself left out) and the
// node's cluster. Peers already chosen stay chosen while they remain;
// peers without a probe port or address are not probed.
func (p *Prober) SetPeers(peers []wire.NodeNetwork, clusterID string) {
	byID := map[string]target{}
	var local, remote []target
	for _, n := range peers {
		ip, err := netip.ParseAddr(n.PublicIP)
		if err != nil || n.ProbePort <= 0 || n.ProbePort > 65535 {
			continue
		}
		t := target{id: n.NodeID, cluster: n.ClusterID, addr: netip.AddrPortFrom(ip.Unmap(), uint16(n.ProbePort))}
		byID[t.id] = t
		if t.cluster == clusterID {
			local = append(local, t)
		} else {
			remote = append(remote, t)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = byID
	for id := range p.coords {
		if _, ok := byID[id]; !ok {
			delete(p.coords, id)
		}
	}
	kept := p.peers[:0:0]
	chosen := map[string]bool{}
	for _, t := range p.peers {
		if n, ok := byID[t.id]; ok {
			kept = append(kept, n)
			chosen[t.id] = true
		} else {
			p.client.ForgetNode(t.id)
		}
	}
	mrand.Shuffle(len(local), func(i, j int) { local[i], local[j] = local[j], local[i] })
	mrand.Shuffle(len(remote), func(i, j int) { remote[i], remote[j] = remote[j], remote[i] })
	add := func(from []target, upTo int) {
		for _, t := range from {
			if len(kept) >= upTo {
				return
			}
			if !chosen[t.id] {
				kept, chosen[t.id] = append(kept, t), true
			}
		}
	}
	add(local, max(1, p.cfg.MaxPeers-2))
	add(remote, p.cfg.MaxPeers)
	add(local, p.cfg.MaxPeers)
	p.peers = kept
}

// SetWanted names peers to probe besides the random choice (at most
// MaxPeers of them, those SetPeers knows): the nodes whose round trips the
// node needs, e.g. those behind its closest routes.
func (p *Prober) SetWanted(ids []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wanted = p.wanted[:0]
	for _, id := range ids {
		if t, ok := p.all[id]; ok && len(p.wanted) < p.cfg.MaxPeers && !slices.ContainsFunc(p.wanted, func(w target) bool { return w.id == id }) {
			p.wanted = append(p.wanted, t)
		}
	}
}

// Estimates are the estimated round trips to the peers among ids whose
// coordinates an answer brought, by id.
func (p *Prober) Estimates(ids []string) map[string]time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.measured {
		return nil
	}
	own := netcoord.ToWire(p.client.GetCoordinate())
	out := map[string]time.Duration{}
	for _, id := range ids {
		if d, ok := netcoord.Estimate(own, p.coords[id]); ok {
			out[id] = d
		}
	}
	return out
}

// Run answers probes and probes one peer every interval until ctx ends.
func (p *Prober) Run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		p.conn.Close()
	}()
	go p.probeLoop(ctx)
	buf := make([]byte, packetSize+1)
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			p.log.Debug("probe: read", "err", err)
			continue
		}
		pk, err := unmarshal(buf[:n])
		if err != nil {
			continue
		}
		switch pk.kind {
		case kindProbe:
			p.answer(pk, from)
		case kindAnswer:
			p.deliver(pk, from)
		}
	}
}

// answer sends our coordinate back, within the answer rate.
func (p *Prober) answer(pk packet, to netip.AddrPort) {
	now := time.Now()
	p.mu.Lock()
	p.tokens = min(answerRate, p.tokens+now.Sub(p.tokensAt).Seconds()*answerRate)
	p.tokensAt = now
	ok := p.tokens >= 1
	if ok {
		p.tokens--
	}
	p.mu.Unlock()
	if !ok {
		p.dropped.Add(1)
		return
	}
	out := packet{kind: kindAnswer, nonce: pk.nonce, coord: netcoord.ToWire(p.client.GetCoordinate())}
	if _, err := p.conn.WriteToUDPAddrPort(out.marshal(), to); err == nil {
		p.served.Add(1)
	}
}

// deliver hands an answer to the waiting probe if it is the one expected.
func (p *Prober) deliver(pk packet, from netip.AddrPort) {
	p.mu.Lock()
	w := p.pending
	if w != nil && w.nonce == pk.nonce && w.addr == netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) {
		p.pending = nil
	} else {
		w = nil
	}
	p.mu.Unlock()
	if w != nil && pk.coord != nil {
		w.got <- pk.coord
	}
}

func (p *Prober) probeLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.probeOne(ctx)
	}
}

// probeOne probes the next peer and updates the coordinate with the answer.
func (p *Prober) probeOne(ctx context.Context) {
	w := &pending{got: make(chan *wire.Coordinate, 1)}
	if _, err := rand.Read(w.nonce[:]); err != nil {
		return
	}
	p.mu.Lock()
	rotation := p.peers
	if len(p.wanted) > 0 {
		rotation = slices.Concat(p.peers, p.wanted)
	}
	if len(rotation) == 0 {
		p.mu.Unlock()
		return
	}
	peer := rotation[p.next%len(rotation)]
	p.next++
	w.addr, p.pending = peer.addr, w
	p.mu.Unlock()
	start := time.Now()
	if _, err := p.conn.WriteToUDPAddrPort((&packet{kind: kindProbe, nonce: w.nonce}).marshal(), peer.addr); err != nil {
		p.log.Debug("probe: send", "peer", peer.id, "err", err)
		return
	}
	p.sent.Add(1)
	timer := time.NewTimer(p.cfg.Timeout)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return
	case <-timer.C:
		p.lost.Add(1)
		p.mu.Lock()
		if p.pending == w {
			p.pending = nil
		}
		p.mu.Unlock()
		return
	case other := <-w.got:
		rtt := time.Since(start)
		p.answered.Add(1)
		if _, err := p.client.Update(peer.id, netcoord.FromWire(other), rtt); err != nil {
			p.log.Debug("probe: coordinate update", "peer", peer.id, "rtt", rtt, "err", err)
			return
		}
		p.mu.Lock()
		p.measured = true
		if p.coords == nil {
			p.coords = map[string]*wire.Coordinate{}
		}
		p.coords[peer.id] = other
		p.mu.Unlock()
	}
}
