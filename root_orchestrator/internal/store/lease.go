package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Lease is who leads the root replicas on one database: the replica that
// holds the state in memory, schedules and writes. The others forward to
// it. One document, updated atomically: no consensus of our own.
type Lease struct {
	Holder string    `bson:"holder"`
	Addr   string    `bson:"addr"` // the leader's API URL, for the others
	Until  time.Time `bson:"until"`
}

const leaseID = "root-leader"

// AcquireLease takes or renews the leadership for ttl if it is free,
// expired or ours already; otherwise it returns the current holder.
func (s *Store) AcquireLease(ctx context.Context, holder, addr string, ttl time.Duration) (bool, Lease, error) {
	now := time.Now().UTC()
	want := Lease{Holder: holder, Addr: addr, Until: now.Add(ttl)}
	_, err := s.leases.UpdateOne(ctx,
		bson.M{"_id": leaseID, "$or": bson.A{bson.M{"holder": holder}, bson.M{"until": bson.M{"$lt": now}}}},
		bson.M{"$set": want}, options.UpdateOne().SetUpsert(true))
	if err == nil {
		return true, want, nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return false, Lease{}, fmt.Errorf("leader lease: %w", err)
	}
	// Held by another replica: the upsert found no match and collided.
	var cur Lease
	if err := s.leases.FindOne(ctx, bson.M{"_id": leaseID}).Decode(&cur); err != nil {
		return false, Lease{}, fmt.Errorf("leader lease: %w", err)
	}
	return cur.Holder == holder, cur, nil
}

// ReleaseLease gives the leadership up at once (at a clean stop), so that
// another replica takes over without waiting for the lease to expire.
func (s *Store) ReleaseLease(ctx context.Context, holder string) error {
	_, err := s.leases.UpdateOne(ctx, bson.M{"_id": leaseID, "holder": holder},
		bson.M{"$set": bson.M{"until": time.Time{}}})
	if err != nil {
		return fmt.Errorf("release leader lease: %w", err)
	}
	return nil
}
