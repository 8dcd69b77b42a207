package manager

import (
	"context"
	"fmt"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// DeletedNodeError refuses the registration of a node an admin deleted
// that shows its old credential.
type DeletedNodeError struct{ Name, ID string }

// NodeDeleted is the id of the deleted node.
func (e *DeletedNodeError) NodeDeleted() string { return e.ID }

func (e *DeletedNodeError) Error() string {
	return fmt.Sprintf("node %s (%s) was deleted by an admin; its credential is revoked. To join again as a new node, "+
		"remove its saved credentials (node-credentials.json in its data dir) and register with a node join token", e.Name, e.ID)
}

// OnNodeDeleted sets what to call for each node deleted (the broker drops
// its connection).
func (m *Manager) OnNodeDeleted(f func(id string)) {
	m.mu.Lock()
	m.onDeleted = f
	m.mu.Unlock()
}

// DeleteNodes takes the root's list of the nodes an admin deleted (all it
// remembers). Each one this manager still knows is forgotten at once: its
// MQTT password stops working, the broker drops its connection, its subnet
// is free, and its instances are placed on other nodes without waiting for
// any grace (the node is gone, not silent). A deleted node registering
// again with its old credential is refused; it returns how many nodes were
// deleted now.
func (m *Manager) DeleteNodes(ctx context.Context, ids []string) (int, error) {
	m.mu.Lock()
	now := time.Now()
	m.deleted = make(map[string]bool, len(ids))
	for _, id := range ids {
		m.deleted[id] = true
	}
	for id := range m.deletedAt {
		if !m.deleted[id] {
			delete(m.deletedAt, id)
		}
	}
	var gone []node
	for _, id := range ids {
		n := m.nodes[id]
		if n == nil {
			continue
		}
		gone = append(gone, *n)
		m.deletedAt[id] = now
		delete(m.nodes, id)
		if m.byName[n.Name] == id {
			delete(m.byName, n.Name)
		}
		delete(m.dirtyNode, id)
		delete(m.pendingOn, id)
		delete(m.removedFrom, id)
		moved := 0
		for _, in := range m.instances {
			if in.LostFrom == id {
				in.LostFrom = "" // its copy there is gone with the node
				m.dirty(in.Key, true)
			}
			if in.NodeID != id {
				continue
			}
			in.NodeID = ""
			if len(in.Spec.Jobs) > 0 && !finished(in) {
				// Its copy there may still run the jobs it held until its
				// lease runs out (the node drops them by itself, cut off):
				// they are not granted to another before (see memberState).
				in.LostFrom = id
			}
			if !finished(in) {
				in.Status.Status, in.Status.Node, in.Status.NodeID = wire.StatusLost, "", ""
				in.Status.Detail = "node " + n.Name + " was deleted; being placed elsewhere"
				m.event(in.Key, "node "+n.Name+" was deleted by an admin: placing it on another node")
				moved++
			}
			m.dirty(in.Key, true)
		}
		m.netDirty = true // a peer and backends went away
		m.log.Warn("node deleted by an admin; its credential is revoked", "node", n.Name, "id", id, "instances_moved", moved)
	}
	onDeleted := m.onDeleted
	m.mu.Unlock()
	if len(gone) == 0 {
		return 0, nil
	}
	for _, n := range gone {
		if onDeleted != nil {
			onDeleted(n.ID)
		}
	}
	var err error
	for _, n := range gone {
		if e := m.st.DeleteNode(ctx, n.ID); e != nil && err == nil {
			err = fmt.Errorf("forget deleted node %s: %w", n.Name, e)
		}
	}
	m.Kick()
	return len(gone), err
}

// deletedNode reports whether the registration shows the id of a node an
// admin deleted. Caller holds mu.
func (m *Manager) deletedNode(id string) bool {
	return id != "" && m.deleted[id]
}
