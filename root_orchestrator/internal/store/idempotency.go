package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/thicket-edge/thicket/mongodb"
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
	// its answer. Only done records are written now; an older root also
	// stored claims in progress, which are ignored.
	Done        bool      `bson:"done"`
	Status      int       `bson:"status,omitempty"`
	ContentType string    `bson:"content_type,omitempty"`
	Body        []byte    `bson:"body,omitempty"`
	CreatedAt   time.Time `bson:"created_at"`
	ExpiresAt   time.Time `bson:"expires_at"`
}

// GetIdempotent returns the kept answer of a request under id, or nil
// when there is none (never used, expired, or a record left in progress by
// a root before this one, which kept claims in the store).
func (s *Store) GetIdempotent(ctx context.Context, id string) (*IdempotencyRecord, error) {
	var rec IdempotencyRecord
	// By _id alone: the embedded store answers that from its index.
	err := s.idem.FindOne(ctx, bson.M{"_id": id}).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("get idempotency key: %w", err)
	}
	if !rec.Done || !rec.ExpiresAt.After(s.now()) {
		return nil, nil
	}
	return &rec, nil
}

// IdempotencyKeys returns the fingerprint and expiry of every answer kept
// and not expired, by id (without the answers).
func (s *Store) IdempotencyKeys(ctx context.Context) (map[string]IdempotencyRecord, error) {
	cur, err := s.idem.Find(ctx, bson.M{"done": true, "expires_at": bson.M{"$gt": s.now()}},
		options.Find().SetProjection(bson.M{"fingerprint": 1, "expires_at": 1, "done": 1}))
	if err != nil {
		return nil, fmt.Errorf("list idempotency keys: %w", err)
	}
	var recs []IdempotencyRecord
	if err := cur.All(ctx, &recs); err != nil {
		return nil, fmt.Errorf("list idempotency keys: %w", err)
	}
	out := make(map[string]IdempotencyRecord, len(recs))
	for _, r := range recs {
		out[r.ID] = r
	}
	return out, nil
}

// KeepIdempotent stores the answer of a request that succeeded, in one
// write batched with those of concurrent requests: the claim while it ran
// is the API's, in memory (only the leading replica serves requests). It
// replaces an expired record of the same key (or an older root's claim).
func (s *Store) KeepIdempotent(ctx context.Context, rec IdempotencyRecord) error {
	rec = s.Kept(rec)
	if err := s.idemSave.Save(ctx, mongodb.Doc{ID: rec.ID, Doc: rec}); err != nil {
		return fmt.Errorf("store idempotent answer: %w", err)
	}
	return nil
}

// Kept is rec as the store keeps a done answer. Written through the state
// (state.WriteAfter with state.KindAnswer and a *IdempotencyRecord), it is
// stored with or after the state changes its request made.
func (s *Store) Kept(rec IdempotencyRecord) IdempotencyRecord {
	rec.CreatedAt, rec.ExpiresAt, rec.Done = s.now(), rec.ExpiresAt.UTC(), true
	return rec
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
