package manager

import (
	"fmt"
	"slices"
	"sort"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/scheduler"
)

// SetNodeModes takes the root's lists of the nodes an admin cordoned and
// of those it drains (all it holds, with every desired set). Nothing new
// is placed on either; a drained node's instances are moved to the other
// nodes (drain). A node in neither list takes placements again.
func (m *Manager) SetNodeModes(cordoned, drained []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := make(map[string]bool, len(cordoned)+len(drained))
	for _, id := range slices.Concat(cordoned, drained) {
		c[id] = true
	}
	d := make(map[string]bool, len(drained))
	for _, id := range drained {
		d[id] = true
	}
	changed := len(c) != len(m.cordoned) || len(d) != len(m.drained)
	for id := range c {
		changed = changed || !m.cordoned[id]
	}
	for id := range d {
		if !m.drained[id] {
			changed = true
			if n := m.nodes[id]; n != nil {
				m.log.Info("draining a node: its instances move to the other nodes, one at a time", "node", n.Name)
			}
		}
	}
	for id := range m.drainMoving {
		if !d[id] {
			delete(m.drainMoving, id)
		}
	}
	if len(d) == 0 {
		clear(m.drainBlocked)
	}
	m.cordoned, m.drained = c, d
	if changed {
		m.Kick()
	}
}

// drain moves the instances of drained nodes to other nodes, one at a time
// per node: the next moves when the one moved before runs (or ended) on
// its new node, and only when another node has room for it now; one that
// does not fit stays, with an event saying why. Moving is what a restart
// elsewhere is: the drained node stops its copy, place starts one on
// another node. Caller holds mu; place runs after it.
func (m *Manager) drain() {
	if len(m.drained) == 0 {
		return
	}
	var nodes []scheduler.Node
	for id := range m.drained {
		n := m.nodes[id]
		if n == nil {
			continue
		}
		if k, ok := m.drainMoving[id]; ok {
			if in := m.instances[k]; in != nil && moving(in) {
				continue // wait for it to run on its new node
			}
			delete(m.drainMoving, id)
		}
		var next []string
		for _, in := range m.instances {
			if in.NodeID == id && !finished(in) {
				next = append(next, in.Key)
			}
		}
		if len(next) == 0 {
			continue
		}
		sort.Strings(next)
		if nodes == nil {
			nodes = m.snapshot(true)
		}
		var in *state.Instance
		for _, k := range next {
			cand := m.instances[k]
			if _, err := scheduler.PickNode(m.cfg.ClusterName, nodes, cand.Spec); err != nil {
				msg := fmt.Sprintf("node %s is drained; no other node has room for this instance: %v", n.Name, err)
				if m.drainBlocked[k] != msg {
					m.drainBlocked[k] = msg
					m.event(k, msg)
				}
				continue
			}
			in = cand
			break
		}
		if in == nil {
			continue
		}
		delete(m.drainBlocked, in.Key)
		in.NodeID = ""
		m.takeFrom(id, in.Key)
		in.Status = wire.InstanceStatus{Key: in.Key, Status: wire.StatusScheduled, Detail: "moving off node " + n.Name + " (drained by an admin)"}
		m.event(in.Key, "node "+n.Name+" is drained by an admin: moving this instance to another node")
		m.dirty(in.Key, true)
		m.netDirty = true // its backend leaves the service table until it runs again
		m.drainMoving[id] = in.Key
		nodes = nil // placements change what is free
	}
}

// moving reports whether an instance moved by a drain is still on its way:
// not placed yet, or placed and not yet running.
func moving(in *state.Instance) bool {
	switch in.Status.Status {
	case wire.StatusRequested, wire.StatusScheduled, wire.StatusCreating, wire.StatusLost:
		return true
	}
	return false
}
