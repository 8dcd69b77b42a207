package manager

import "github.com/thicket-edge/thicket/contract/wire"

// Holds reports whether req carries the credential of the registered node
// of its name (a node registering again).
func (m *Manager) Holds(req wire.NodeRegisterRequest) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.nodes[m.byName[req.Name]]
	return n != nil && n.holds(req)
}
