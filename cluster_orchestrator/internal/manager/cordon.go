package manager

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"time"

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
// per node, each make-before-break: its new copy is placed on another node
// (only when one has room for it now; one that does not fit stays, with an
// event saying why) while the copy on the drained node keeps running and
// stays the instance's status; when the new copy runs, the old one is
// stopped (or when the new one is not RUNNING after DrainTimeout, with an
// event saying so). The next instance of that node moves when the one
// before runs (or ended) on its new node. Caller holds mu; place runs
// after it.
func (m *Manager) drain() {
	m.moveTimeouts(time.Now())
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
			if in := m.instances[k]; in != nil && (in.DrainFrom != "" || moving(in)) {
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
				m.blocked(cand, fmt.Sprintf("node %s is drained; no other node has room for this instance: %v", n.Name, err))
				continue
			}
			in = cand
			break
		}
		if in == nil {
			continue
		}
		delete(m.drainBlocked, in.Key)
		in.DrainFrom, in.NodeID = id, ""
		m.moves[in.Key] = &move{since: time.Now()}
		in.Status.Detail = "moving off node " + n.Name + " (drained by an admin)"
		m.event(in.Key, "node "+n.Name+" is drained by an admin: starting a copy on another node; this one stops once that runs")
		m.dirty(in.Key, true)
		m.drainMoving[id] = in.Key
		nodes = nil // placements change what is free
	}
}

// blocked records (once per reason) why an instance cannot move off a
// drained node. Caller holds mu.
func (m *Manager) blocked(in *state.Instance, msg string) {
	if m.drainBlocked[in.Key] != msg {
		m.drainBlocked[in.Key] = msg
		m.event(in.Key, msg)
	}
}

// move is an instance on its way off a drained node: since when, and what
// its new copy reported (the instance's status shows the old copy's).
type move struct {
	since time.Time
	to    wire.InstanceStatus
}

// Steps of a move.
const (
	moveWait    = iota // the new copy is on its way
	moveDone           // the new copy runs (or ended): the old one stops
	moveTimeout        // the new copy is not RUNNING in time: the old one stops anyway
)

// moveStep decides what a move does with its new copy's status after
// elapsed of timeout.
func moveStep(to wire.InstanceStatus, elapsed, timeout time.Duration) int {
	switch to.Status {
	case wire.StatusRunning, wire.StatusCompleted:
		return moveDone
	}
	if elapsed >= timeout {
		return moveTimeout
	}
	return moveWait
}

func (m *Manager) drainTimeout() time.Duration {
	if m.cfg.DrainTimeout > 0 {
		return m.cfg.DrainTimeout
	}
	return 2 * time.Minute
}

// moveReported takes the new copy's status of a moving instance and says
// whether it is the instance's status now (the move is done). Caller holds
// mu.
func (m *Manager) moveReported(in *state.Instance, st wire.InstanceStatus) bool {
	mv := m.moves[in.Key]
	if mv == nil {
		mv = &move{since: time.Now()}
		m.moves[in.Key] = mv
	}
	mv.to = st
	switch moveStep(st, time.Since(mv.since), m.drainTimeout()) {
	case moveDone:
		m.endMove(in, fmt.Sprintf("runs on node %s: its copy on drained node %s is stopped", st.Node, m.nodeName(in.DrainFrom)))
		return true
	case moveTimeout:
		m.endMove(in, fmt.Sprintf("the copy on node %s is %s after %s: the copy on drained node %s is stopped anyway",
			st.Node, st.Status, m.drainTimeout(), m.nodeName(in.DrainFrom)))
		return true
	}
	if d := moveDetail(m.nodeName(in.DrainFrom), st); in.Status.Detail != d {
		in.Status.Detail = d
		m.dirty(in.Key, false)
	}
	return false
}

// moveTimeouts stops the old copies of moves whose new copy did not run
// in time. Caller holds mu.
func (m *Manager) moveTimeouts(now time.Time) {
	for k, mv := range m.moves {
		in := m.instances[k]
		if in == nil || in.DrainFrom == "" {
			delete(m.moves, k)
			continue
		}
		if in.NodeID == "" || moveStep(mv.to, now.Sub(mv.since), m.drainTimeout()) != moveTimeout {
			continue
		}
		to := mv.to
		m.endMove(in, fmt.Sprintf("the copy on node %s is not RUNNING after %s (%s): the copy on drained node %s is stopped anyway",
			m.nodeName(in.NodeID), m.drainTimeout(), cmp.Or(to.Status, wire.StatusScheduled), m.nodeName(in.DrainFrom)))
		if to.Key == "" {
			to = wire.InstanceStatus{Key: k, Status: wire.StatusScheduled, Node: m.nodeName(in.NodeID), NodeID: in.NodeID}
		}
		in.Status = to
	}
}

// endMove stops the old copy of a moving instance: its drained node's
// desired set drops it. The caller sets the instance's status (its new
// copy's). Caller holds mu.
func (m *Manager) endMove(in *state.Instance, msg string) {
	m.takeFrom(in.DrainFrom, in.Key)
	in.DrainFrom = ""
	delete(m.moves, in.Key)
	m.event(in.Key, msg)
	m.dirty(in.Key, true)
	m.dirtyNode[in.NodeID] = true
	m.netDirty = true // its backend moves
}

// moveBack ends a move whose new copy cannot be placed: the instance stays
// on its drained node (and says why). Caller holds mu.
func (m *Manager) moveBack(in *state.Instance, why string) {
	from := in.DrainFrom
	in.NodeID, in.DrainFrom = from, ""
	delete(m.moves, in.Key)
	in.Status.Detail = ""
	m.blocked(in, fmt.Sprintf("node %s is drained; %s", m.nodeName(from), why))
	m.dirty(in.Key, true)
}

// moveLost ends the move of an instance when one of its nodes is lost:
// the new copy's node (it stays on the drained one), or the drained node
// (the new copy is the instance now). Caller holds mu.
func (m *Manager) moveLost(in *state.Instance, lost *node) {
	if in.NodeID == lost.ID {
		m.takeFrom(in.NodeID, in.Key)
		m.moveBack(in, "node "+lost.Name+", where it was moving, is lost")
		return
	}
	to := wire.InstanceStatus{Key: in.Key, Status: wire.StatusScheduled, Node: m.nodeName(in.NodeID), NodeID: in.NodeID}
	if mv := m.moves[in.Key]; mv != nil && mv.to.Key != "" {
		to = mv.to
	}
	m.endMove(in, "drained node "+lost.Name+" is lost: the copy on node "+to.Node+" is the instance now")
	in.Status = to
}

// moveDetail is a moving instance's status detail: where its new copy is.
func moveDetail(from string, to wire.InstanceStatus) string {
	return fmt.Sprintf("moving off drained node %s: its copy on node %s is %s", from, to.Node, to.Status)
}

// nodeName is a node's name (its id when unknown). Caller holds mu.
func (m *Manager) nodeName(id string) string {
	if n := m.nodes[id]; n != nil {
		return n.Name
	}
	return id
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
