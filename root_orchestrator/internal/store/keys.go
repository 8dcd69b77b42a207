package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/thicket-edge/thicket/root_orchestrator/internal/auth"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// keySetID is the secrets document of the token signing keys.
const keySetID = "jwt-keys"

// ErrKeySetChanged is returned when another replica changed the signing
// keys between a read and a write.
var ErrKeySetChanged = errors.New("the signing keys changed meanwhile; try again")

// SigningKeyRecord is one token signing key.
type SigningKeyRecord struct {
	ID        string    `bson:"kid"`
	Seed      []byte    `bson:"seed"`
	CreatedAt time.Time `bson:"created_at"`
	// RetiredAt is when a newer key replaced it; zero for the current key.
	RetiredAt time.Time `bson:"retired_at,omitempty"`
	// Legacy marks the key of the tokens without a kid (the single key of
	// earlier versions).
	Legacy bool `bson:"legacy,omitempty"`
}

// Private is the key's private key.
func (k SigningKeyRecord) Private() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(k.Seed) }

// SigningKeySet is the current signing key and the earlier ones whose
// tokens may still be alive, in one document so that it changes atomically.
type SigningKeySet struct {
	ID      string             `bson:"_id"`
	Current string             `bson:"current"`
	Keys    []SigningKeyRecord `bson:"keys"`
}

// AuthKeys are the keys of the set as the signer takes them.
func (ks *SigningKeySet) AuthKeys() []auth.Key {
	out := make([]auth.Key, 0, len(ks.Keys))
	for _, k := range ks.Keys {
		out = append(out, auth.Key{ID: k.ID, Priv: k.Private(), Legacy: k.Legacy})
	}
	return out
}

func keyID(seed []byte) string {
	return auth.KeyID(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
}

func newSigningKey(now time.Time) (SigningKeyRecord, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return SigningKeyRecord{}, fmt.Errorf("generate signing key: %w", err)
	}
	return SigningKeyRecord{ID: keyID(seed), Seed: seed, CreatedAt: now}, nil
}

// prune drops the keys retired longer than keep ago: no token they signed
// is alive any more. It reports whether it dropped any.
func (ks *SigningKeySet) prune(now time.Time, keep time.Duration) bool {
	kept := ks.Keys[:0]
	for _, k := range ks.Keys {
		if k.ID == ks.Current || k.RetiredAt.IsZero() || now.Sub(k.RetiredAt) < keep {
			kept = append(kept, k)
		}
	}
	dropped := len(kept) != len(ks.Keys)
	ks.Keys = kept
	return dropped
}

// SigningKeys returns the token signing keys, with the keys retired longer
// than keep ago dropped. On first use it makes the set from the single key
// of earlier versions (which keeps verifying their tokens without kid) or a
// new one. Concurrent first starts agree on one set: the insert that loses
// the race reads the winner's.
func (s *Store) SigningKeys(ctx context.Context, keep time.Duration) (*SigningKeySet, error) {
	var ks SigningKeySet
	err := s.secrets.FindOne(ctx, bson.M{"_id": keySetID}).Decode(&ks)
	if errors.Is(err, mongo.ErrNoDocuments) {
		legacy, err := s.SigningKey(ctx)
		if err != nil {
			return nil, err
		}
		seed := legacy.Seed()
		ks = SigningKeySet{ID: keySetID, Current: keyID(seed),
			Keys: []SigningKeyRecord{{ID: keyID(seed), Seed: seed, CreatedAt: s.now(), Legacy: true}}}
		if _, err := s.secrets.InsertOne(ctx, ks); err != nil {
			if !mongo.IsDuplicateKeyError(err) {
				return nil, fmt.Errorf("store signing keys: %w", err)
			}
			return s.SigningKeys(ctx, keep)
		}
		return &ks, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	for _, k := range ks.Keys {
		if len(k.Seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("load signing keys: key %s has a seed of %d bytes", k.ID, len(k.Seed))
		}
	}
	if ks.prune(s.now(), keep) {
		if err := s.replaceKeySet(ctx, ks.Current, &ks); err != nil && !errors.Is(err, ErrKeySetChanged) {
			return nil, err
		}
	}
	return &ks, nil
}

// RotateSigningKey makes a new current signing key; the previous one keeps
// verifying its tokens until keep has passed, then it is dropped.
func (s *Store) RotateSigningKey(ctx context.Context, keep time.Duration) (*SigningKeySet, error) {
	ks, err := s.SigningKeys(ctx, keep)
	if err != nil {
		return nil, err
	}
	now := s.now()
	k, err := newSigningKey(now)
	if err != nil {
		return nil, err
	}
	prev := ks.Current
	for i := range ks.Keys {
		if ks.Keys[i].ID == prev {
			ks.Keys[i].RetiredAt = now
		}
	}
	ks.Keys = append(ks.Keys, k)
	ks.Current = k.ID
	ks.prune(now, keep)
	if err := s.replaceKeySet(ctx, prev, ks); err != nil {
		return nil, err
	}
	return ks, nil
}

// replaceKeySet writes ks if the stored set's current key is still prev.
func (s *Store) replaceKeySet(ctx context.Context, prev string, ks *SigningKeySet) error {
	r, err := s.secrets.ReplaceOne(ctx, bson.M{"_id": keySetID, "current": prev}, ks)
	if err != nil {
		return fmt.Errorf("store signing keys: %w", err)
	}
	if r.MatchedCount == 0 {
		return ErrKeySetChanged
	}
	return nil
}
