// Package nodetokens decides which join tokens admit a node to the
// cluster: the cluster's own bootstrap token (its data dir's
// node-join-token file) and the node tokens the root issued for the
// cluster, which can expire, be single-use and be scoped to a node name.
//
// The root keeps the tokens (only their hashes) and sends the cluster the
// list with every desired set; a token it no longer lists is revoked. The
// cluster records the use of a single-use token in its own store before it
// admits the node, so a second use is refused even while the root is away,
// and tells the root (Pending) until the root's list shows it used.
package nodetokens

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/secretfile"
)

// ErrUnknown: the token is neither the cluster's own nor one the root
// lists for it (never issued, revoked, or for another cluster).
var ErrUnknown = errors.New("invalid node join token")

// Refusal says why a known token admits no node: expired, spent or scoped
// to another name.
type Refusal struct{ Reason string }

func (e *Refusal) Error() string { return e.Reason }

// Store keeps the root's list and the uses of single-use tokens.
type Store interface {
	LoadNodeTokens(ctx context.Context) ([]wire.NodeToken, []wire.NodeTokenUse, error)
	SaveNodeTokens(ctx context.Context, list []wire.NodeToken) error
	// RecordNodeTokenUse records a use; false if the token was used
	// already (of concurrent calls exactly one gets true).
	RecordNodeTokenUse(ctx context.Context, u wire.NodeTokenUse) (bool, error)
	ForgetNodeTokenUse(ctx context.Context, id string) error
}

// Hash is how a token's secret is kept and compared: its SHA-256 in hex.
func Hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Keeper admits nodes by token.
type Keeper struct {
	local string // the cluster's own token's secret ("": none)
	st    Store
	now   func() time.Time

	mu     sync.Mutex
	list   []wire.NodeToken
	byHash map[string]wire.NodeToken
	uses   map[string]wire.NodeTokenUse // by token id
}

// New loads the root's last list and the recorded uses. local is the
// secret of the cluster's own token.
func New(ctx context.Context, local string, st Store, now func() time.Time) (*Keeper, error) {
	if now == nil {
		now = time.Now
	}
	list, uses, err := st.LoadNodeTokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("load node tokens: %w", err)
	}
	k := &Keeper{local: local, st: st, now: now, uses: map[string]wire.NodeTokenUse{}}
	for _, u := range uses {
		k.uses[u.ID] = u
	}
	k.set(list)
	return k, nil
}

func (k *Keeper) set(list []wire.NodeToken) {
	k.list = slices.Clone(list)
	k.byHash = make(map[string]wire.NodeToken, len(list))
	for _, t := range list {
		k.byHash[t.Hash] = t
	}
}

// SetTokens takes the root's list (from a desired set): tokens it no
// longer lists stop working at once.
func (k *Keeper) SetTokens(ctx context.Context, list []wire.NodeToken) error {
	if len(list) > wire.MaxNodeTokens {
		list = list[:wire.MaxNodeTokens]
	}
	k.mu.Lock()
	same := slices.EqualFunc(list, k.list, sameToken)
	if !same {
		k.set(list)
	}
	k.mu.Unlock()
	if same {
		return nil
	}
	return k.st.SaveNodeTokens(ctx, list)
}

func sameToken(a, b wire.NodeToken) bool {
	return a.ID == b.ID && a.Hash == b.Hash && a.SingleUse == b.SingleUse && a.NodeName == b.NodeName &&
		a.UsedBy == b.UsedBy && sameTime(a.ExpiresAt, b.ExpiresAt) && sameTime(a.UsedAt, b.UsedAt)
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// Pending are the uses of single-use tokens the root still lists without
// a use: what the next sync tells it.
func (k *Keeper) Pending() []wire.NodeTokenUse {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []wire.NodeTokenUse
	for _, t := range k.list {
		if u, ok := k.uses[t.ID]; ok && t.UsedAt == nil {
			out = append(out, u)
		}
	}
	return out
}

// Known reports whether secret is the cluster's own token or one the root
// lists, whatever its state.
func (k *Keeper) Known(secret string) bool {
	if secret == "" {
		return false
	}
	if k.local != "" && secretfile.Equal(secret, k.local) {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.byHash[Hash(secret)]
	return ok
}

// Admit decides whether secret admits a node named name. holder: the
// node showed its own credential (an admitted node registering again),
// which a token the cluster knows still admits when it is expired or
// spent. A single-use token is spent here (recorded in the store before
// Admit returns); undo gives it back when the registration then fails.
func (k *Keeper) Admit(ctx context.Context, secret, name string, holder bool) (undo func(context.Context), err error) {
	nothing := func(context.Context) {}
	if secret == "" {
		return nil, ErrUnknown
	}
	if k.local != "" && secretfile.Equal(secret, k.local) {
		return nothing, nil
	}
	k.mu.Lock()
	t, ok := k.byHash[Hash(secret)]
	_, used := k.uses[t.ID]
	k.mu.Unlock()
	if !ok {
		return nil, ErrUnknown
	}
	if holder {
		return nothing, nil
	}
	now := k.now()
	switch {
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return nil, &Refusal{Reason: fmt.Sprintf("node join token %s expired at %s; ask an admin for a new one", t.ID, t.ExpiresAt.UTC().Format(time.RFC3339))}
	case t.NodeName != "" && t.NodeName != name:
		return nil, &Refusal{Reason: fmt.Sprintf("node join token %s admits only a node named %q", t.ID, t.NodeName)}
	case !t.SingleUse:
		return nothing, nil
	case used || t.UsedAt != nil:
		return nil, spent(t.ID)
	}
	u := wire.NodeTokenUse{ID: t.ID, Node: name, At: now.UTC().Truncate(time.Millisecond)}
	first, err := k.st.RecordNodeTokenUse(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("record the use of node join token %s: %w", t.ID, err)
	}
	if !first {
		return nil, spent(t.ID)
	}
	k.mu.Lock()
	k.uses[t.ID] = u
	k.mu.Unlock()
	return func(ctx context.Context) {
		if err := k.st.ForgetNodeTokenUse(ctx, t.ID); err == nil {
			k.mu.Lock()
			delete(k.uses, t.ID)
			k.mu.Unlock()
		}
	}, nil
}

func spent(id string) error {
	return &Refusal{Reason: fmt.Sprintf("node join token %s was single-use and is spent; ask an admin for a new one", id)}
}

// Memory is a Store in memory, for tests and standalone use.
type Memory struct {
	mu   sync.Mutex
	list []wire.NodeToken
	uses map[string]wire.NodeTokenUse
}

func (m *Memory) LoadNodeTokens(context.Context) ([]wire.NodeToken, []wire.NodeTokenUse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var uses []wire.NodeTokenUse
	for _, u := range m.uses {
		uses = append(uses, u)
	}
	return slices.Clone(m.list), uses, nil
}

func (m *Memory) SaveNodeTokens(_ context.Context, list []wire.NodeToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = slices.Clone(list)
	return nil
}

func (m *Memory) RecordNodeTokenUse(_ context.Context, u wire.NodeTokenUse) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.uses[u.ID]; ok {
		return false, nil
	}
	if m.uses == nil {
		m.uses = map[string]wire.NodeTokenUse{}
	}
	m.uses[u.ID] = u
	return true, nil
}

func (m *Memory) ForgetNodeTokenUse(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.uses, id)
	return nil
}
