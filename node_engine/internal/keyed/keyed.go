// Package keyed serialises work per key (per instance): calls for one key
// wait for each other, calls for different keys do not.
package keyed

import "sync"

// Mutex is a set of mutexes by key; the zero value is ready to use.
type Mutex struct {
	mu sync.Mutex
	m  map[string]*refMutex
}

type refMutex struct {
	sync.Mutex
	refs int
}

// Lock locks key and returns its unlock. A key's mutex is dropped once no
// one holds or waits for it.
func (k *Mutex) Lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*refMutex{}
	}
	m := k.m[key]
	if m == nil {
		m = &refMutex{}
		k.m[key] = m
	}
	m.refs++
	k.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		k.mu.Lock()
		m.refs--
		if m.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
