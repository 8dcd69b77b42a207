package httpapi

import (
	"context"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// userCache keeps user records for a short time, so that checking every
// request's user (does it exist, which role, which password generation)
// costs no store round trip per request. Changes made through this root are
// seen at once (forget); changes through another replica within ttl.
type userCache struct {
	st  *store.Store
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cachedUser
}

type cachedUser struct {
	u  *store.UserRecord
	at time.Time
}

func newUserCache(st *store.Store, ttl time.Duration) *userCache {
	return &userCache{st: st, ttl: ttl, m: map[string]cachedUser{}}
}

func (c *userCache) get(ctx context.Context, name string) (*store.UserRecord, error) {
	c.mu.Lock()
	e, ok := c.m[name]
	c.mu.Unlock()
	if ok && time.Since(e.at) < c.ttl {
		return e.u, nil
	}
	u, err := c.st.GetUser(ctx, name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) > 10000 { // bound memory; entries are cheap to refetch
		clear(c.m)
	}
	c.m[name] = cachedUser{u: u, at: time.Now()}
	c.mu.Unlock()
	return u, nil
}

func (c *userCache) forget(name string) {
	c.mu.Lock()
	delete(c.m, name)
	c.mu.Unlock()
}
