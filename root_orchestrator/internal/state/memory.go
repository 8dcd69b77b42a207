package state

import (
	"context"
	"errors"
	"sync"
)

// Memory is a Backend that keeps everything in memory: for tests of the
// state and of what is built on it, without a database. Fail makes writes
// fail until it is cleared.
type Memory struct {
	mu      sync.Mutex
	objects map[Kind]map[string]any
	Writes  int
	fail    error
}

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory { return &Memory{objects: map[Kind]map[string]any{}} }

// Fail makes every write fail with err (nil: succeed again).
func (m *Memory) Fail(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}

// Count returns how many objects of a kind are stored.
func (m *Memory) Count(k Kind) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.objects[k])
}

// Get returns a stored object, or nil.
func (m *Memory) Get(k Kind, id string) any {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.objects[k][id]
}

// Write implements Backend.
func (m *Memory) Write(_ context.Context, cs []Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.Writes++
	for _, c := range cs {
		if m.objects[c.Kind] == nil {
			m.objects[c.Kind] = map[string]any{}
		}
		if c.Object == nil {
			delete(m.objects[c.Kind], c.ID)
		} else {
			m.objects[c.Kind][c.ID] = c.Object
		}
	}
	return nil
}

// Load implements Backend.
func (m *Memory) Load(context.Context) (*Data, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := &Data{}
	var err error
	for k, objs := range m.objects {
		for _, o := range objs {
			switch o := o.(type) {
			case *Application:
				d.Apps = append(d.Apps, o)
			case *Service:
				d.Services = append(d.Services, o)
			case *Instance:
				c := *o // Load may set in-memory fields
				d.Instances = append(d.Instances, &c)
			case *Cluster:
				d.Clusters = append(d.Clusters, o)
			case *Node:
				d.Nodes = append(d.Nodes, o)
			case *IPReservation:
				d.IPs = append(d.IPs, o)
			case *Block:
				d.Blocks = append(d.Blocks, o)
			default:
				err = errors.Join(err, errors.New("memory backend: unknown object of kind "+string(k)))
			}
		}
	}
	return d, err
}
