// Package auth issues and verifies the root's JWTs and keeps user accounts.
//
// Tokens are signed with Ed25519 keys that are generated in the store, so
// that several root replicas on one MongoDB accept each other's tokens. A
// token names its key in the "kid" header; the signer keeps the current key
// and the earlier ones that tokens still alive may carry (KeySet). Tokens
// issued before keys had ids carry none: they verify with the legacy key.
package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token kinds.
const (
	KindAccess  = "access"
	KindRefresh = "refresh"
)

const issuer = "thicket-root"

func init() {
	// Token times in milliseconds, so that a password change revokes the
	// tokens issued before it and not those issued just after it.
	jwt.TimePrecision = time.Millisecond
}

// ErrInvalidToken is returned for every token that must not be accepted:
// malformed, badly signed, expired, of the wrong kind.
var ErrInvalidToken = errors.New("invalid or expired token")

// Claims are the claims of every token the root issues.
type Claims struct {
	Role string `json:"role"`
	Kind string `json:"kind"`
	// Family is the login session the token belongs to: a login starts one,
	// every refresh continues it, a logout or the reuse of a spent refresh
	// token ends it (with all its tokens). Empty in tokens issued before
	// sessions had families.
	Family string `json:"fam,omitempty"`
	jwt.RegisteredClaims
}

// Key is one signing key of a key set.
type Key struct {
	ID   string
	Priv ed25519.PrivateKey
	// Legacy marks the key that signed tokens without a kid.
	Legacy bool
}

// KeyID derives a key id from a public key.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// Signer issues tokens with the current key of its key set and verifies
// them with the key their kid names.
type Signer struct {
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	now        func() time.Time

	mu      sync.RWMutex
	current Key
	keys    map[string]ed25519.PublicKey
	legacy  ed25519.PublicKey
	// verified: the claims of tokens whose signature verified with the
	// key set as it is (SetKeys forgets them), at most maxVerified.
	verified map[string]*Claims
	keysGen  uint64 // SetKeys calls so far
}

// maxVerified bounds the tokens a Signer remembers as verified. A client
// sends its access token with every request, and checking its Ed25519
// signature and decoding it again each time was 4-5 % of the root's CPU in
// a burst of requests (profiled in the scale benchmark). When full, the
// remembered ones are forgotten; they verify again on their next use.
const maxVerified = 4096

// NewSigner returns a signer whose only key is priv, which also verifies
// tokens without a kid.
func NewSigner(priv ed25519.PrivateKey, accessTTL, refreshTTL time.Duration) *Signer {
	s := &Signer{AccessTTL: accessTTL, RefreshTTL: refreshTTL, now: time.Now}
	k := Key{ID: KeyID(priv.Public().(ed25519.PublicKey)), Priv: priv, Legacy: true}
	if err := s.SetKeys(k.ID, []Key{k}); err != nil {
		panic(err) // cannot happen: the current key is in the set
	}
	return s
}

// NewKeySigner returns a signer over a key set (see SetKeys).
func NewKeySigner(current string, keys []Key, accessTTL, refreshTTL time.Duration) (*Signer, error) {
	s := &Signer{AccessTTL: accessTTL, RefreshTTL: refreshTTL, now: time.Now}
	if err := s.SetKeys(current, keys); err != nil {
		return nil, err
	}
	return s, nil
}

// SetKeys replaces the key set: current signs, every key of keys verifies
// the tokens that name it.
func (s *Signer) SetKeys(current string, keys []Key) error {
	m := map[string]ed25519.PublicKey{}
	var cur Key
	var legacy ed25519.PublicKey
	for _, k := range keys {
		if len(k.Priv) != ed25519.PrivateKeySize || k.ID == "" {
			return fmt.Errorf("signing key %q: not an ed25519 key with an id", k.ID)
		}
		pub := k.Priv.Public().(ed25519.PublicKey)
		m[k.ID] = pub
		if k.Legacy {
			legacy = pub
		}
		if k.ID == current {
			cur = k
		}
	}
	if cur.ID == "" {
		return fmt.Errorf("signing key %q is not in the key set", current)
	}
	s.mu.Lock()
	s.current, s.keys, s.legacy = cur, m, legacy
	s.verified = nil // verified with keys that may be gone
	s.keysGen++
	s.mu.Unlock()
	return nil
}

// CurrentKey is the id of the key that signs new tokens.
func (s *Signer) CurrentKey() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.current.ID
}

// NewID returns a random token or family id.
func NewID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Issue signs a token of the given kind for a user, in no session family.
func (s *Signer) Issue(username, role, kind string) (string, error) {
	tok, _, err := s.IssueIn(username, role, kind, "")
	return tok, err
}

// IssueIn signs a token of the given kind for a user in a session family,
// and returns it with its claims.
func (s *Signer) IssueIn(username, role, kind, family string) (string, *Claims, error) {
	ttl := s.AccessTTL
	if kind == KindRefresh {
		ttl = s.RefreshTTL
	}
	now := s.now()
	jti, err := NewID()
	if err != nil {
		return "", nil, err
	}
	c := &Claims{
		Role:   role,
		Kind:   kind,
		Family: family,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   username,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        jti,
		},
	}
	s.mu.RLock()
	key := s.current
	s.mu.RUnlock()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = key.ID
	tok, err := t.SignedString(key.Priv)
	if err != nil {
		return "", nil, fmt.Errorf("sign token: %w", err)
	}
	return tok, c, nil
}

// verifyKey picks the key a token names; a token without kid is verified
// with the legacy key.
func (s *Signer) verifyKey(t *jwt.Token) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	kid, ok := t.Header["kid"]
	if !ok {
		if s.legacy == nil {
			return nil, errors.New("token without key id")
		}
		return s.legacy, nil
	}
	id, _ := kid.(string)
	pub, ok := s.keys[id]
	if !ok {
		return nil, fmt.Errorf("unknown signing key %q", id)
	}
	return pub, nil
}

// Verify checks a token's signature, lifetime, issuer and kind. A token
// verified before with the same key set is not decoded and its signature
// not checked again: only its lifetime and kind are.
func (s *Signer) Verify(token, kind string) (*Claims, error) {
	c, ok := s.verifiedClaims(token)
	if !ok {
		c = &Claims{}
		s.mu.RLock()
		gen := s.keysGen
		s.mu.RUnlock()
		_, err := jwt.ParseWithClaims(token, c, s.verifyKey,
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(s.now),
		)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
		}
		s.remember(token, c, gen)
	}
	if c.Kind != kind || c.Subject == "" {
		return nil, fmt.Errorf("%w: not an %s token", ErrInvalidToken, kind)
	}
	return c, nil
}

// verifiedClaims returns a copy of the claims of a token verified before
// with the current key set, if it is within its lifetime now (otherwise
// the full verification says why not).
func (s *Signer) verifiedClaims(token string) (*Claims, bool) {
	s.mu.RLock()
	v, ok := s.verified[token]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	// As jwt validates them, without leeway: expiry required, not before
	// optional, issued-at not checked.
	now := s.now()
	if v.ExpiresAt == nil || !now.Before(v.ExpiresAt.Time) || v.NotBefore != nil && now.Before(v.NotBefore.Time) {
		return nil, false
	}
	c := *v
	return &c, true
}

// remember keeps the claims of a token that verified with the key set of
// generation gen, unless the key set changed meanwhile.
func (s *Signer) remember(token string, c *Claims, gen uint64) {
	v := *c
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keysGen != gen {
		return // SetKeys ran meanwhile
	}
	if s.verified == nil || len(s.verified) >= maxVerified {
		s.verified = make(map[string]*Claims)
	}
	s.verified[token] = &v
}
