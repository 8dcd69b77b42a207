package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ErrBadCredential is returned for an unknown join token or cluster
// credential.
var ErrBadCredential = state.ErrBadCredential

// DefaultJoinTokenTTL is how long a join token works unless its creator
// says otherwise.
const DefaultJoinTokenTTL = 24 * time.Hour

// States of a join token.
const (
	TokenActive  = state.TokenActive
	TokenExpired = state.TokenExpired
	TokenSpent   = state.TokenSpent // a single-use token that was used
)

// JoinToken is a stored cluster join token (only its hash is kept).
type JoinToken struct {
	ID        string    `json:"id" bson:"_id"` // first 8 hex digits of the hash, to name it
	Hash      string    `json:"-" bson:"hash"`
	Name      string    `json:"name" bson:"name"`
	CreatedAt time.Time `json:"created_at" bson:"created_at"`
	// ExpiresAt: the token stops working then; nil: never.
	ExpiresAt *time.Time `json:"expires_at" bson:"expires_at,omitempty"`
	// SingleUse: it registers one cluster, then is spent.
	SingleUse bool `json:"single_use" bson:"single_use,omitempty"`
	// ClusterName: it registers only a cluster of that name (and may
	// replace a registered cluster of that name: an admin's reset).
	ClusterName string     `json:"cluster_name,omitempty" bson:"cluster_name,omitempty"`
	UsedAt      *time.Time `json:"used_at,omitempty" bson:"used_at,omitempty"`
	UsedBy      string     `json:"used_by,omitempty" bson:"used_by,omitempty"`
	// State is active, expired or spent, as of the answer.
	State string `json:"state" bson:"-"`
}

// JoinTokenSpec is what a new join token is made with.
type JoinTokenSpec struct {
	Name string
	// TTL: how long it works; 0 means never (the caller decides the
	// default).
	TTL         time.Duration
	SingleUse   bool
	ClusterName string
}

func (t *JoinToken) stateAt(now time.Time) string {
	return state.TokenState(t.SingleUse, t.UsedAt, t.ExpiresAt, now)
}

// CreateJoinToken makes a new cluster join token and returns it; only its
// hash is stored, so it is shown this once.
func (s *Store) CreateJoinToken(ctx context.Context, spec JoinTokenSpec) (string, *JoinToken, error) {
	tok, err := state.RandomSecret()
	if err != nil {
		return "", nil, err
	}
	tok = "thj_" + tok
	h := state.SecretHash(tok)
	now := s.now()
	jt := &JoinToken{ID: h[:8], Hash: h, Name: spec.Name, CreatedAt: now, SingleUse: spec.SingleUse, ClusterName: spec.ClusterName}
	if spec.TTL > 0 {
		exp := now.Add(spec.TTL)
		jt.ExpiresAt = &exp
	}
	if _, err := s.joinTokens.InsertOne(ctx, jt); err != nil {
		return "", nil, fmt.Errorf("store join token: %w", err)
	}
	jt.State = jt.stateAt(now)
	return tok, jt, nil
}

// ListJoinTokens lists the join tokens (without secrets), with their state.
func (s *Store) ListJoinTokens(ctx context.Context) ([]JoinToken, error) {
	cur, err := s.joinTokens.Find(ctx, bson.M{}, options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	out := []JoinToken{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	now := s.now()
	for i := range out {
		out[i].State = out[i].stateAt(now)
	}
	return out, nil
}

// DeleteJoinToken revokes a join token: it stops working at once. Clusters
// that joined with it keep their own credentials.
func (s *Store) DeleteJoinToken(ctx context.Context, id string) error {
	r, err := s.joinTokens.DeleteOne(ctx, bson.M{"_id": id})
	if err != nil {
		return fmt.Errorf("delete join token: %w", err)
	}
	if r.DeletedCount == 0 {
		return fmt.Errorf("join token %s: %w", id, ErrNotFound)
	}
	return nil
}

// CountJoinTokens says how many join tokens exist.
func (s *Store) CountJoinTokens(ctx context.Context) (int64, error) {
	return s.joinTokens.CountDocuments(ctx, bson.M{})
}

// TokenRefusal says why a join token that exists cannot register a
// cluster: expired, spent, or scoped to another name.
type TokenRefusal struct{ Reason string }

func (e *TokenRefusal) Error() string { return e.Reason }

// UseJoinToken checks that tok may register a cluster named clusterName
// and, if it is single-use, spends it: of concurrent uses exactly one
// succeeds (a conditional update of the one document). An unknown token is
// ErrBadCredential; an expired, spent or otherwise scoped one a
// *TokenRefusal. UnspendJoinToken gives a spent token back when the
// registration then failed.
func (s *Store) UseJoinToken(ctx context.Context, tok, clusterName string) (*JoinToken, error) {
	if tok == "" {
		return nil, ErrBadCredential
	}
	var jt JoinToken
	err := s.joinTokens.FindOne(ctx, bson.M{"hash": state.SecretHash(tok)}).Decode(&jt)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrBadCredential
	}
	if err != nil {
		return nil, fmt.Errorf("check join token: %w", err)
	}
	now := s.now().Truncate(time.Millisecond) // as MongoDB keeps it
	switch jt.stateAt(now) {
	case TokenExpired:
		return nil, &TokenRefusal{Reason: fmt.Sprintf("join token %s expired at %s; ask an admin for a new one", jt.ID, jt.ExpiresAt.UTC().Format(time.RFC3339))}
	case TokenSpent:
		return nil, &TokenRefusal{Reason: fmt.Sprintf("join token %s was single-use and is spent; ask an admin for a new one", jt.ID)}
	}
	if jt.ClusterName != "" && jt.ClusterName != clusterName {
		return nil, &TokenRefusal{Reason: fmt.Sprintf("join token %s registers only a cluster named %q", jt.ID, jt.ClusterName)}
	}
	if !jt.SingleUse {
		return &jt, nil
	}
	r, err := s.joinTokens.UpdateOne(ctx, bson.M{"_id": jt.ID, "used_at": bson.M{"$exists": false}},
		bson.M{"$set": bson.M{"used_at": now, "used_by": clusterName}})
	if err != nil {
		return nil, fmt.Errorf("spend join token: %w", err)
	}
	if r.ModifiedCount == 0 {
		return nil, &TokenRefusal{Reason: fmt.Sprintf("join token %s was single-use and is spent; ask an admin for a new one", jt.ID)}
	}
	jt.UsedAt, jt.UsedBy = &now, clusterName
	return &jt, nil
}

// UnspendJoinToken makes a single-use token that UseJoinToken spent usable
// again (the registration it was spent on failed).
func (s *Store) UnspendJoinToken(ctx context.Context, jt *JoinToken) error {
	if !jt.SingleUse || jt.UsedAt == nil {
		return nil
	}
	_, err := s.joinTokens.UpdateOne(ctx, bson.M{"_id": jt.ID, "used_at": *jt.UsedAt},
		bson.M{"$unset": bson.M{"used_at": "", "used_by": ""}})
	if err != nil {
		return fmt.Errorf("give join token back: %w", err)
	}
	return nil
}
