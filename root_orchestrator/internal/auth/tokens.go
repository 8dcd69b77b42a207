// Package auth issues and verifies the root's JWTs and keeps user accounts.
//
// Tokens are signed with an Ed25519 key that is generated on first start and
// kept in the store, so that several root replicas on one MongoDB accept each
// other's tokens.
package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
	jwt.RegisteredClaims
}

// Signer issues and verifies tokens with one key pair.
type Signer struct {
	priv       ed25519.PrivateKey
	pub        ed25519.PublicKey
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	now        func() time.Time
}

// NewSigner returns a signer over the given private key.
func NewSigner(priv ed25519.PrivateKey, accessTTL, refreshTTL time.Duration) *Signer {
	return &Signer{
		priv:       priv,
		pub:        priv.Public().(ed25519.PublicKey),
		AccessTTL:  accessTTL,
		RefreshTTL: refreshTTL,
		now:        time.Now,
	}
}

// Issue signs a token of the given kind for a user.
func (s *Signer) Issue(username, role, kind string) (string, error) {
	ttl := s.AccessTTL
	if kind == KindRefresh {
		ttl = s.RefreshTTL
	}
	now := s.now()
	var jti [12]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("token id: %w", err)
	}
	c := Claims{
		Role: role,
		Kind: kind,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   username,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        hex.EncodeToString(jti[:]),
		},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(s.priv)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return tok, nil
}

// Verify checks a token's signature, lifetime, issuer and kind.
func (s *Signer) Verify(token, kind string) (*Claims, error) {
	c := &Claims{}
	_, err := jwt.ParseWithClaims(token, c, func(*jwt.Token) (any, error) { return s.pub, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Kind != kind || c.Subject == "" {
		return nil, fmt.Errorf("%w: not an %s token", ErrInvalidToken, kind)
	}
	return c, nil
}
