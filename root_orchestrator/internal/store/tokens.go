package store

import (
	"context"
	"fmt"
	"time"

	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ErrBadCredential is returned for an unknown join token or cluster
// credential.
var ErrBadCredential = state.ErrBadCredential

// JoinToken is a stored cluster join token (only its hash is kept).
type JoinToken struct {
	ID        string    `json:"id" bson:"_id"` // first 8 hex digits of the hash, to name it
	Hash      string    `json:"-" bson:"hash"`
	Name      string    `json:"name" bson:"name"`
	CreatedAt time.Time `json:"created_at" bson:"created_at"`
}

// CreateJoinToken makes a new cluster join token and returns it; only its
// hash is stored, so it is shown this once.
func (s *Store) CreateJoinToken(ctx context.Context, name string) (string, *JoinToken, error) {
	tok, err := state.RandomSecret()
	if err != nil {
		return "", nil, err
	}
	tok = "thj_" + tok
	h := state.SecretHash(tok)
	jt := &JoinToken{ID: h[:8], Hash: h, Name: name, CreatedAt: s.now()}
	if _, err := s.joinTokens.InsertOne(ctx, jt); err != nil {
		return "", nil, fmt.Errorf("store join token: %w", err)
	}
	return tok, jt, nil
}

// ListJoinTokens lists the join tokens (without secrets).
func (s *Store) ListJoinTokens(ctx context.Context) ([]JoinToken, error) {
	cur, err := s.joinTokens.Find(ctx, bson.M{}, options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	out := []JoinToken{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	return out, nil
}

// DeleteJoinToken revokes a join token. Clusters that joined with it keep
// their own credentials.
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

// CheckJoinToken says whether a join token is valid (ErrBadCredential if
// not).
func (s *Store) CheckJoinToken(ctx context.Context, tok string) error {
	if tok == "" {
		return ErrBadCredential
	}
	n, err := s.joinTokens.CountDocuments(ctx, bson.M{"hash": state.SecretHash(tok)})
	if err != nil {
		return fmt.Errorf("check join token: %w", err)
	}
	if n == 0 {
		return ErrBadCredential
	}
	return nil
}
