package state

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Memory keeps nodes and instances in memory, as Store keeps them in
// MongoDB: for tests of the cluster manager without a database. Several
// managers made on one Memory one after the other see what the earlier
// ones wrote, as a restarted manager does.
type Memory struct {
	mu        sync.Mutex
	nodes     map[string]Node
	instances map[string]Instance
	ledgers   map[string][]byte // job ledgers, by service id
	// SaveErr, when set, fails SaveJobLedger (a test's unreachable store).
	SaveErr error
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	return &Memory{nodes: map[string]Node{}, instances: map[string]Instance{}}
}

// Nodes returns every node, by id.
func (m *Memory) Nodes(context.Context) ([]Node, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.SortedFunc(maps.Values(m.nodes), func(a, b Node) int { return strings.Compare(a.ID, b.ID) }), nil
}

// SaveNode writes a node.
func (m *Memory) SaveNode(_ context.Context, n Node) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes[n.ID] = n
	return nil
}

// DeleteNode forgets a node.
func (m *Memory) DeleteNode(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.nodes, id)
	return nil
}

// Instances returns every instance, by key.
func (m *Memory) Instances(context.Context) ([]Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.SortedFunc(maps.Values(m.instances), func(a, b Instance) int { return strings.Compare(a.Key, b.Key) }), nil
}

// WriteInstances saves and removes instances.
func (m *Memory) WriteInstances(_ context.Context, save []Instance, remove []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, in := range save {
		m.instances[in.Key] = in
	}
	for _, k := range remove {
		delete(m.instances, k)
	}
	return nil
}
