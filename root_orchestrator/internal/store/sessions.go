package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Errors of a refresh that must not succeed.
var (
	// ErrSessionRevoked: the session was logged out or revoked.
	ErrSessionRevoked = errors.New("session revoked")
	// ErrRefreshReused: the refresh token was already spent; the session
	// is revoked with all its tokens, since one of its holders is not its
	// owner.
	ErrRefreshReused = errors.New("refresh token reused")
)

// SessionRecord is one login session (a token family): the id of the only
// refresh token that may still be traded, and whether it was revoked.
type SessionRecord struct {
	Family    string    `bson:"_id"`
	Username  string    `bson:"username"`
	Current   string    `bson:"current"`
	Revoked   bool      `bson:"revoked"`
	CreatedAt time.Time `bson:"created_at"`
	// ExpiresAt is when its latest refresh token expires; after it the
	// record is garbage.
	ExpiresAt time.Time `bson:"expires_at"`
}

// CreateSession stores a new session whose refresh token is current.
func (s *Store) CreateSession(ctx context.Context, family, username, current string, expires time.Time) error {
	r := SessionRecord{Family: family, Username: username, Current: current, CreatedAt: s.now(), ExpiresAt: expires.UTC()}
	if _, err := s.sessions.InsertOne(ctx, r); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	return nil
}

// RotateSession spends the refresh token spent of a session and makes next
// the one to trade next. One conditional update does it, so of two
// concurrent refreshes with one token only one wins. A spent token
// revokes the session (ErrRefreshReused); a revoked session gives
// ErrSessionRevoked, an unknown or expired one ErrNotFound.
func (s *Store) RotateSession(ctx context.Context, family, spent, next string, expires time.Time) error {
	now := s.now()
	r, err := s.sessions.UpdateOne(ctx,
		bson.M{"_id": family, "current": spent, "revoked": false, "expires_at": bson.M{"$gt": now}},
		bson.M{"$set": bson.M{"current": next, "expires_at": expires.UTC()}})
	if err != nil {
		return fmt.Errorf("rotate session: %w", err)
	}
	if r.MatchedCount == 1 {
		return nil
	}
	var rec SessionRecord
	if err := s.sessions.FindOne(ctx, bson.M{"_id": family}).Decode(&rec); err != nil {
		return fmt.Errorf("rotate session: %w", notFound(err))
	}
	switch {
	case rec.Revoked:
		return ErrSessionRevoked
	case !rec.ExpiresAt.After(now):
		return fmt.Errorf("session expired: %w", ErrNotFound)
	}
	if err := s.RevokeSession(ctx, family); err != nil {
		return err
	}
	return ErrRefreshReused
}

// RevokeSession ends a session: none of its tokens is accepted any more.
func (s *Store) RevokeSession(ctx context.Context, family string) error {
	r, err := s.sessions.UpdateOne(ctx, bson.M{"_id": family}, bson.M{"$set": bson.M{"revoked": true}})
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if r.MatchedCount == 0 {
		return fmt.Errorf("revoke session: %w", ErrNotFound)
	}
	return nil
}

// SessionActive reports whether a session exists, is not revoked and has
// not expired.
func (s *Store) SessionActive(ctx context.Context, family string) (bool, error) {
	var rec SessionRecord
	err := s.sessions.FindOne(ctx, bson.M{"_id": family}).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get session: %w", err)
	}
	return !rec.Revoked && rec.ExpiresAt.After(s.now()), nil
}

// DeleteExpiredSessions removes the sessions whose last refresh token has
// expired, and says how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	r, err := s.sessions.DeleteMany(ctx, bson.M{"expires_at": bson.M{"$lte": s.now()}})
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return r.DeletedCount, nil
}
