package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// adoptNetwork waits for the net manager and learns the addresses of the
// instances it already serves (after an engine restart).
func (e *Engine) adoptNetwork(ctx context.Context) error {
	for wait := 500 * time.Millisecond; ; wait = min(wait*2, 5*time.Second) {
		as, err := e.net.Attachments(ctx)
		if err == nil {
			e.mu.Lock()
			for _, a := range as {
				e.ips[a.Key] = a.IP
			}
			e.mu.Unlock()
			return nil
		}
		e.log.Warn("net manager not answering yet; waiting", "socket", e.cfg.NetSocket, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// configureNetwork hands the net manager the node's subnet, peers and
// service table when they changed.
func (e *Engine) configureNetwork(ctx context.Context, c netapi.Config) {
	if e.net == nil || c.Subnet == "" {
		return
	}
	h := fnv.New64a()
	_ = json.NewEncoder(h).Encode(c)
	sum := h.Sum64()
	e.mu.Lock()
	same := sum == e.netHash
	e.mu.Unlock()
	if same {
		return
	}
	if err := e.net.Configure(ctx, c); err != nil {
		e.mu.Lock()
		repeated := e.netErr == err.Error()
		e.netErr = err.Error()
		e.mu.Unlock()
		if !repeated { // said once, then in every report (NotReady)
			e.log.Warn("the net manager refused the node's network; the node takes no instances until it does", "err", err)
		}
		return
	}
	e.mu.Lock()
	e.netHash, e.netErr = sum, ""
	e.mu.Unlock()
}

// closestRTTs has the prober measure the nodes behind closest routes and
// returns its estimates to them, coarsened (rttBucket), for the net manager;
// nil when there are none.
func closestRTTs(p Probe, n wire.Network, self string) map[string]int {
	var ids []string
	for _, r := range n.Services {
		if r.Mode != wire.RouteClosest {
			continue
		}
		for _, b := range r.Backends {
			if b.NodeID != "" && b.NodeID != self && !slices.Contains(ids, b.NodeID) {
				ids = append(ids, b.NodeID)
			}
		}
	}
	slices.Sort(ids)
	p.SetWanted(ids)
	if len(ids) == 0 {
		return nil
	}
	var out map[string]int
	for id, d := range p.Estimates(ids) {
		if out == nil {
			out = map[string]int{}
		}
		out[id] = rttBucket(d)
	}
	return out
}

// rttBucket coarsens a round trip to whole milliseconds below 10 ms, to 5 ms
// below 100 ms and to 25 ms above, so that jitter does not rewrite the net
// manager's service table at every reconcile while real moves do.
func rttBucket(d time.Duration) int {
	ms := d.Seconds() * 1000
	switch {
	case ms < 10:
		return int(math.Round(ms))
	case ms < 100:
		return 5 * int(math.Round(ms/5))
	}
	return 25 * int(math.Round(ms/25))
}

// attach gets the instance its network from the net manager and points the
// runtime at its namespace. Without a net manager the instance shares the
// node's network.
func (e *Engine) attach(ctx context.Context, spec *wire.InstanceSpec) error {
	if e.net == nil {
		return nil
	}
	ports, err := spec.PortMappings()
	if err != nil {
		return fmt.Errorf("instance network: port: %w", err)
	}
	a, err := e.net.Attach(ctx, spec.Key, netapi.AttachRequest{Ports: ports})
	if err != nil {
		return fmt.Errorf("instance network: %w", err)
	}
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[runtimes.LabelNetNS] = a.Netns
	spec.Labels = labels
	e.mu.Lock()
	e.ips[spec.Key] = a.IP
	e.mu.Unlock()
	return nil
}
