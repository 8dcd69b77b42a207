package state

import (
	"fmt"
	"slices"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// NodeToken is a node join token an admin issued for a cluster. Only the
// hash of its secret is kept; the cluster gets the list with its desired
// sets and admits nodes by it.
type NodeToken struct {
	ID        string // the first 8 hex digits of Hash
	Hash      string
	CreatedAt time.Time
	// ExpiresAt: it admits no node from then on; nil: never.
	ExpiresAt *time.Time
	SingleUse bool
	// NodeName: it admits only a node of that name.
	NodeName string
	// UsedAt and UsedBy: the cluster told that the single-use token was
	// used.
	UsedAt *time.Time
	UsedBy string
}

// States of a join token (as of a time).
const (
	TokenActive  = "active"
	TokenExpired = "expired"
	TokenSpent   = "spent"
)

// State is the token's state at now.
func (t *NodeToken) State(now time.Time) string {
	return TokenState(t.SingleUse, t.UsedAt, t.ExpiresAt, now)
}

// TokenState is the state at now of a join token (cluster or node): spent
// once a single-use one was used, else expired from its expiry on, else
// active.
func TokenState(singleUse bool, usedAt, expiresAt *time.Time, now time.Time) string {
	switch {
	case singleUse && usedAt != nil:
		return TokenSpent
	case expiresAt != nil && !now.Before(*expiresAt):
		return TokenExpired
	}
	return TokenActive
}

// NodeTokenKeep is how long a cluster still lists a token that expired or
// was spent (then it goes when the next token is made).
const NodeTokenKeep = 7 * 24 * time.Hour

// NodeTokenSpec is what a node token is made with.
type NodeTokenSpec struct {
	// TTL: how long it works; 0: never.
	TTL       time.Duration
	SingleUse bool
	NodeName  string
}

// ErrTooManyTokens: the cluster has wire.MaxNodeTokens tokens that still
// count.
var ErrTooManyTokens = fmt.Errorf("a cluster holds at most %d node join tokens; revoke some first", wire.MaxNodeTokens)

// CreateNodeToken issues a node token for a cluster and returns its
// secret, shown this once. Tokens that ended more than NodeTokenKeep ago
// are forgotten.
func (s *Store) CreateNodeToken(clusterID string, spec NodeTokenSpec) (string, NodeToken, Ticket, error) {
	secret, err := RandomSecret()
	if err != nil {
		return "", NodeToken{}, Ticket{}, err
	}
	secret = "thn_" + secret
	var tok NodeToken
	tk, err := s.Write(func(t *Txn) error {
		old := first[Cluster](t.r(), tClusters, "id", clusterID)
		if old == nil {
			return fmt.Errorf("cluster %s: %w", clusterID, ErrNotFound)
		}
		c := *old
		c.NodeTokens = slices.DeleteFunc(slices.Clone(c.NodeTokens), func(x NodeToken) bool { return x.ended(t.now.Add(-NodeTokenKeep)) })
		if len(c.NodeTokens) >= wire.MaxNodeTokens {
			return ErrTooManyTokens
		}
		h := SecretHash(secret)
		tok = NodeToken{ID: h[:8], Hash: h, CreatedAt: t.now, SingleUse: spec.SingleUse, NodeName: spec.NodeName}
		if spec.TTL > 0 {
			exp := t.now.Add(spec.TTL)
			tok.ExpiresAt = &exp
		}
		c.NodeTokens = append(c.NodeTokens, tok)
		c.TokensIndex = t.index
		t.put(tClusters, KindCluster, c.ID, &c, true)
		return nil
	})
	if err != nil {
		return "", NodeToken{}, Ticket{}, err
	}
	return secret, tok, tk, nil
}

// ended reports whether the token expired or was spent before at.
func (t *NodeToken) ended(at time.Time) bool {
	return (t.SingleUse && t.UsedAt != nil && t.UsedAt.Before(at)) || (t.ExpiresAt != nil && t.ExpiresAt.Before(at))
}

// RevokeNodeToken forgets a cluster's node token: the cluster's watch
// answers at once, and the cluster admits no node by it from then on.
func (s *Store) RevokeNodeToken(clusterID, id string) (Ticket, error) {
	return s.Write(func(t *Txn) error {
		old := first[Cluster](t.r(), tClusters, "id", clusterID)
		if old == nil {
			return fmt.Errorf("cluster %s: %w", clusterID, ErrNotFound)
		}
		i := slices.IndexFunc(old.NodeTokens, func(x NodeToken) bool { return x.ID == id })
		if i < 0 {
			return fmt.Errorf("node token %s of cluster %s: %w", id, old.Name, ErrNotFound)
		}
		c := *old
		c.NodeTokens = slices.Delete(slices.Clone(c.NodeTokens), i, i+1)
		c.TokensIndex = t.index
		t.put(tClusters, KindCluster, c.ID, &c, true)
		return nil
	})
}

// takeTokenReport records what a cluster's sync says of node tokens: the
// uses of single-use ones and its CA pin. It reports whether c changed.
func (t *Txn) takeTokenReport(c *Cluster, r Report) bool {
	changed, cloned := false, false
	if r.CAPin != "" && r.CAPin != c.CAPin {
		c.CAPin, changed = r.CAPin, true
	}
	for _, u := range r.NodeTokenUses {
		i := slices.IndexFunc(c.NodeTokens, func(x NodeToken) bool { return x.ID == u.ID })
		if i < 0 || !c.NodeTokens[i].SingleUse || c.NodeTokens[i].UsedAt != nil {
			continue
		}
		if !cloned { // c is a copy whose slice is the stored one's
			c.NodeTokens, cloned = slices.Clone(c.NodeTokens), true
		}
		at := u.At
		if at.IsZero() || at.After(t.now) {
			at = t.now
		}
		c.NodeTokens[i].UsedAt, c.NodeTokens[i].UsedBy = &at, u.Node
		c.TokensIndex, changed = t.index, true
	}
	return changed
}

// WireNodeTokens are a cluster's node tokens as its desired sets carry
// them.
func WireNodeTokens(c *Cluster) []wire.NodeToken {
	if c == nil || len(c.NodeTokens) == 0 {
		return nil
	}
	out := make([]wire.NodeToken, len(c.NodeTokens))
	for i, t := range c.NodeTokens {
		out[i] = wire.NodeToken{ID: t.ID, Hash: t.Hash, ExpiresAt: t.ExpiresAt, SingleUse: t.SingleUse, NodeName: t.NodeName,
			UsedAt: t.UsedAt, UsedBy: t.UsedBy}
	}
	return out
}
