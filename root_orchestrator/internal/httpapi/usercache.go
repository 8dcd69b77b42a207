package httpapi

import (
	"context"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// cache keeps what load reads from the store for a short time, so that
// checking every request's user (does it exist, which role, which password
// generation) and session (is it still active) costs no store round trip
// per request. Changes made through this root are seen at once (set,
// forget); changes through another replica within ttl.
type cache[V any] struct {
	load func(ctx context.Context, key string) (V, error)
	ttl  time.Duration
	mu   sync.Mutex
	m    map[string]cached[V]
	// gen counts forgets: a value loaded while one happened may be older
	// than the change it announced, and is not kept.
	gen uint64
}

type cached[V any] struct {
	v  V
	at time.Time
}

func newCache[V any](ttl time.Duration, load func(context.Context, string) (V, error)) *cache[V] {
	return &cache[V]{load: load, ttl: ttl, m: map[string]cached[V]{}}
}

// newUserCache caches user records.
func newUserCache(st *store.Store, ttl time.Duration) *cache[*store.UserRecord] {
	return newCache(ttl, st.GetUser)
}

func (c *cache[V]) get(ctx context.Context, key string) (V, error) {
	c.mu.Lock()
	e, ok := c.m[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && time.Since(e.at) < c.ttl {
		return e.v, nil
	}
	v, err := c.load(ctx, key)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.put(key, v)
	}
	c.mu.Unlock()
	return v, nil
}

func (c *cache[V]) set(key string, v V) {
	c.mu.Lock()
	c.put(key, v)
	c.mu.Unlock()
}

// put stores v; the caller holds mu.
func (c *cache[V]) put(key string, v V) {
	if len(c.m) > 10000 { // bound memory; entries are cheap to refetch
		clear(c.m)
	}
	c.m[key] = cached[V]{v: v, at: time.Now()}
}

// forget drops key: call it after changing what it stands for. A load
// that was under way keeps its value out of the cache.
func (c *cache[V]) forget(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.gen++
	c.mu.Unlock()
}
