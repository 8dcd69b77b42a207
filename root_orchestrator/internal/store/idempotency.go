package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// IdempotencyRecord is one Idempotency-Key a user sent with a creating
// request: which request (Fingerprint), and once it succeeded, its answer.
type IdempotencyRecord struct {
	// ID identifies user and key (a hash of both: the key itself is the
	// client's and is not stored).
	ID          string `bson:"_id"`
	Username    string `bson:"username"`
	Fingerprint string `bson:"fingerprint"`
	// Done: the request succeeded and Status, ContentType and Body are
	// its answer; else it is in progress since CreatedAt.
	Done        bool      `bson:"done"`
	Status      int       `bson:"status,omitempty"`
	ContentType string    `bson:"content_type,omitempty"`
	Body        []byte    `bson:"body,omitempty"`
	CreatedAt   time.Time `bson:"created_at"`
	ExpiresAt   time.Time `bson:"expires_at"`
}

// BeginIdempotent claims rec.ID for a request in progress. It returns nil
// when the caller holds the claim (the key is new, expired, or its earlier
// request has been in progress longer than stale: a root that crashed
// meanwhile), else the record that holds it.
func (s *Store) BeginIdempotent(ctx context.Context, rec IdempotencyRecord, stale time.Duration) (*IdempotencyRecord, error) {
	now := s.now()
	rec.CreatedAt, rec.ExpiresAt, rec.Done = now, rec.ExpiresAt.UTC(), false
	for range 3 {
		_, err := s.idem.InsertOne(ctx, rec)
		if err == nil {
			return nil, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return nil, fmt.Errorf("store idempotency key: %w", err)
		}
		var old IdempotencyRecord
		if err := s.idem.FindOne(ctx, bson.M{"_id": rec.ID}).Decode(&old); errors.Is(err, mongo.ErrNoDocuments) {
			continue // deleted meanwhile: insert again
		} else if err != nil {
			return nil, fmt.Errorf("get idempotency key: %w", err)
		}
		if old.ExpiresAt.After(now) && (old.Done || now.Sub(old.CreatedAt) < stale) {
			return &old, nil
		}
		// Expired, or abandoned: take it over unless another request did.
		r, err := s.idem.ReplaceOne(ctx, bson.M{"_id": rec.ID, "created_at": old.CreatedAt, "done": old.Done}, rec)
		if err != nil {
			return nil, fmt.Errorf("store idempotency key: %w", err)
		}
		if r.MatchedCount == 1 {
			return nil, nil
		}
	}
	return nil, fmt.Errorf("store idempotency key %s: contended", rec.ID)
}

// FinishIdempotent stores the answer of the request that claimed id.
func (s *Store) FinishIdempotent(ctx context.Context, id string, status int, contentType string, body []byte) error {
	_, err := s.idem.UpdateOne(ctx, bson.M{"_id": id},
		bson.M{"$set": bson.M{"done": true, "status": status, "content_type": contentType, "body": body}})
	if err != nil {
		return fmt.Errorf("store idempotent answer: %w", err)
	}
	return nil
}

// AbortIdempotent releases the claim on id of a request that failed: the
// key may be used again.
func (s *Store) AbortIdempotent(ctx context.Context, id string) error {
	if _, err := s.idem.DeleteOne(ctx, bson.M{"_id": id, "done": false}); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// DeleteExpiredIdempotency removes expired idempotency keys and says how
// many.
func (s *Store) DeleteExpiredIdempotency(ctx context.Context) (int64, error) {
	r, err := s.idem.DeleteMany(ctx, bson.M{"expires_at": bson.M{"$lte": s.now()}})
	if err != nil {
		return 0, fmt.Errorf("delete expired idempotency keys: %w", err)
	}
	return r.DeletedCount, nil
}
