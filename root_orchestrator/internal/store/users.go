package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/thicket-edge/thicket/api"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// UserRecord is a stored user account.
type UserRecord struct {
	Username     string    `bson:"_id"`
	PasswordHash string    `bson:"password_hash"`
	Role         string    `bson:"role"`
	CreatedAt    time.Time `bson:"created_at"`
	// TokensAfter: refresh tokens issued before this instant are refused
	// (set when the password changes).
	TokensAfter time.Time `bson:"tokens_after"`
	// Quota, when an admin set one.
	Quota *api.Quota `bson:"quota,omitempty"`
}

// SetQuota stores a user's quota (all zero: none).
func (s *Store) SetQuota(ctx context.Context, name string, q api.Quota) error {
	var v any = q
	if q == (api.Quota{}) {
		v = nil // read back as no quota
	}
	r, err := s.users.UpdateOne(ctx, bson.M{"_id": name}, bson.M{"$set": bson.M{"quota": v}})
	if err != nil {
		return fmt.Errorf("set quota: %w", err)
	}
	if r.MatchedCount == 0 {
		return fmt.Errorf("set quota of %s: %w", name, ErrNotFound)
	}
	return nil
}

// CreateUser stores a new account; an existing name is a ConflictError.
func (s *Store) CreateUser(ctx context.Context, u UserRecord) error {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now()
	}
	if _, err := s.users.InsertOne(ctx, u); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return &ConflictError{Field: "username", Message: fmt.Sprintf("user %q already exists", u.Username)}
		}
		return fmt.Errorf("insert user: %w", err)
	}
	return nil
}

// GetUser returns one account.
func (s *Store) GetUser(ctx context.Context, name string) (*UserRecord, error) {
	var u UserRecord
	if err := s.users.FindOne(ctx, bson.M{"_id": name}).Decode(&u); err != nil {
		return nil, fmt.Errorf("get user: %w", notFound(err))
	}
	return &u, nil
}

// ListUsers returns all accounts, without password hashes.
func (s *Store) ListUsers(ctx context.Context) ([]api.User, error) {
	cur, err := s.users.Find(ctx, bson.M{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).
		SetProjection(bson.M{"password_hash": 0}))
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := []api.User{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// UpdateUser sets a user's password hash and/or role; empty values are
// left as they are. A new password revokes the user's refresh tokens.
func (s *Store) UpdateUser(ctx context.Context, name, hash, role string) error {
	set := bson.M{}
	if hash != "" {
		set["password_hash"] = hash
		set["tokens_after"] = s.now()
	}
	if role != "" {
		set["role"] = role
	}
	r, err := s.users.UpdateOne(ctx, bson.M{"_id": name}, bson.M{"$set": set})
	if err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	if r.MatchedCount == 0 {
		return fmt.Errorf("update user %s: %w", name, ErrNotFound)
	}
	return nil
}

// DeleteUser removes an account.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	r, err := s.users.DeleteOne(ctx, bson.M{"_id": name})
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	if r.DeletedCount == 0 {
		return fmt.Errorf("delete user: %w", ErrNotFound)
	}
	return nil
}

type secret struct {
	ID        string    `bson:"_id"`
	Value     []byte    `bson:"value"`
	CreatedAt time.Time `bson:"created_at"`
}

// SigningKey returns the token signing key, generating and storing it on
// first use. Concurrent first starts agree on one key: the insert that loses
// the race reads the winner's.
func (s *Store) SigningKey(ctx context.Context) (ed25519.PrivateKey, error) {
	const id = "jwt-ed25519-seed"
	var sec secret
	err := s.secrets.FindOne(ctx, bson.M{"_id": id}).Decode(&sec)
	if err == mongo.ErrNoDocuments {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, fmt.Errorf("generate signing key: %w", err)
		}
		sec = secret{ID: id, Value: seed, CreatedAt: s.now()}
		if _, err = s.secrets.InsertOne(ctx, sec); err != nil {
			if !mongo.IsDuplicateKeyError(err) {
				return nil, fmt.Errorf("store signing key: %w", err)
			}
			err = s.secrets.FindOne(ctx, bson.M{"_id": id}).Decode(&sec)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	if len(sec.Value) != ed25519.SeedSize {
		return nil, fmt.Errorf("load signing key: stored seed has %d bytes", len(sec.Value))
	}
	return ed25519.NewKeyFromSeed(sec.Value), nil
}
