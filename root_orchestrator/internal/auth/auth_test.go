package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// clock is a signer's settable time.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newSigner(t *testing.T, priv ed25519.PrivateKey, c *clock) *Signer {
	s := NewSigner(priv, 15*time.Minute, 24*time.Hour)
	s.now = c.now
	return s
}

// TestTokens: a token is accepted by the key that signed it, for its kind,
// within its lifetime (access and refresh tokens each their own), and
// refused as ErrInvalidToken otherwise.
func TestTokens(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	key, other := newKey(t), newKey(t)
	for _, tc := range []struct {
		name       string
		issueKind  string
		verifyKind string
		verifyKey  ed25519.PrivateKey // nil: the signing key
		after      time.Duration      // between issue and verify
		ok         bool
	}{
		{name: "fresh access token", issueKind: KindAccess, verifyKind: KindAccess, ok: true},
		{name: "access token just before expiry", issueKind: KindAccess, verifyKind: KindAccess, after: 15*time.Minute - time.Second, ok: true},
		{name: "access token after expiry", issueKind: KindAccess, verifyKind: KindAccess, after: 15*time.Minute + time.Second},
		{name: "refresh token outlives an access token", issueKind: KindRefresh, verifyKind: KindRefresh, after: 23 * time.Hour, ok: true},
		{name: "refresh token after its expiry", issueKind: KindRefresh, verifyKind: KindRefresh, after: 24*time.Hour + time.Second},
		{name: "refresh token used as access token", issueKind: KindRefresh, verifyKind: KindAccess},
		{name: "access token used as refresh token", issueKind: KindAccess, verifyKind: KindRefresh},
		{name: "another root's key", issueKind: KindAccess, verifyKind: KindAccess, verifyKey: other},
		{name: "clock skew of half a minute is tolerated", issueKind: KindAccess, verifyKind: KindAccess, after: -30 * time.Second, ok: true},
		{name: "not valid long before it was issued", issueKind: KindAccess, verifyKind: KindAccess, after: -2 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t0}
			tok, err := newSigner(t, key, c).Issue("alice", "admin", tc.issueKind)
			if err != nil {
				t.Fatal(err)
			}
			vkey := tc.verifyKey
			if vkey == nil {
				vkey = key
			}
			c.t = t0.Add(tc.after)
			claims, err := newSigner(t, vkey, c).Verify(tok, tc.verifyKind)
			if !tc.ok {
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", claims, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if claims.Subject != "alice" || claims.Role != "admin" || claims.Kind != tc.issueKind || claims.Issuer != issuer {
				t.Errorf("claims = %+v", claims)
			}
		})
	}
}

// TestTokenIDsAndTimes: every token has its own id, and its times are kept
// to the millisecond (a password change revokes what was issued before it,
// not what was issued just after).
func TestTokenIDsAndTimes(t *testing.T) {
	// Half a second: exact in the token's float seconds, lost if times
	// were kept to the second.
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 500_000_000, time.UTC)
	s := newSigner(t, newKey(t), &clock{t0})
	a, _ := s.Issue("alice", "user", KindAccess)
	b, _ := s.Issue("alice", "user", KindAccess)
	if a == b {
		t.Fatal("two tokens issued at the same time are identical")
	}
	ca, err := s.Verify(a, KindAccess)
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := s.Verify(b, KindAccess)
	if ca.ID == "" || ca.ID == cb.ID {
		t.Errorf("token ids %q and %q, want distinct", ca.ID, cb.ID)
	}
	if got, want := ca.IssuedAt.Time, t0; !got.Equal(want) {
		t.Errorf("issued at %v, want %v (millisecond precision)", got, want)
	}
	if got, want := ca.ExpiresAt.Time, t0.Add(15*time.Minute); !got.Equal(want) {
		t.Errorf("expires at %v, want %v", got, want)
	}
}

// TestForgedTokens: tokens not made by Issue with the key are refused,
// whatever they claim.
func TestForgedTokens(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	key := newKey(t)
	s := newSigner(t, key, &clock{t0})
	good, err := s.Issue("alice", "admin", KindAccess)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(mut func(*Claims)) Claims {
		c := Claims{Role: "admin", Kind: KindAccess, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: issuer, Subject: "alice", ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
		}}
		mut(&c)
		return c
	}
	sign := func(c Claims) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	parts := strings.Split(good, ".")
	for _, tc := range []struct {
		name, token string
	}{
		{"empty", ""},
		{"garbage", "not.a.token"},
		{"signature cut off", parts[0] + "." + parts[1] + "."},
		{"payload of another token", parts[0] + "." + strings.Split(sign(claims(func(c *Claims) { c.Role = "root" })), ".")[1] + "." + parts[2]},
		{"HMAC with the public key as secret", func() string {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(func(*Claims) {})).SignedString([]byte(key.Public().(ed25519.PublicKey)))
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}()},
		{"unsigned (alg none)", func() string {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(func(*Claims) {})).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}()},
		{"another issuer", sign(claims(func(c *Claims) { c.Issuer = "someone-else" }))},
		{"no expiry", sign(claims(func(c *Claims) { c.ExpiresAt = nil }))},
		{"no subject", sign(claims(func(c *Claims) { c.Subject = "" }))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := s.Verify(tc.token, KindAccess); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Verify = %+v, %v; want ErrInvalidToken", c, err)
			}
		})
	}
	// The control: a well-formed token signed with the key passes.
	if _, err := s.Verify(sign(claims(func(*Claims) {})), KindAccess); err != nil {
		t.Errorf("a token signed with the key was refused: %v", err)
	}
}

// TestPasswords: hashing takes passwords of 8 characters (not bytes) to 72
// bytes; a hash matches its password only; an empty hash (no such user)
// matches nothing.
func TestPasswords(t *testing.T) {
	for _, tc := range []struct {
		name, pw string
		weak     bool
	}{
		{name: "too short", pw: "1234567", weak: true},
		{name: "empty", pw: "", weak: true},
		{name: "shortest", pw: "12345678"},
		{name: "eight characters of two bytes each", pw: "éééééééé"},
		{name: "seven characters of two bytes each (14 bytes)", pw: "ééééééé", weak: true},
		{name: "72 bytes", pw: strings.Repeat("a", 72)},
		{name: "73 bytes", pw: strings.Repeat("a", 73), weak: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // bcrypt is slow, the race detector more so
			h, err := HashPassword(tc.pw)
			if tc.weak {
				if !errors.Is(err, ErrWeakPassword) {
					t.Fatalf("HashPassword = %q, %v; want ErrWeakPassword", h, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h == tc.pw || !CheckPassword(h, tc.pw) {
				t.Errorf("hash %q does not check against its password", h)
			}
			// (bcrypt reads 72 bytes at most: a change, not an extra byte.)
			changed := tc.pw[:len(tc.pw)-1] + "!"
			if CheckPassword(h, changed) || CheckPassword(h, tc.pw[:len(tc.pw)-1]) {
				t.Error("hash matches another password")
			}
			if CheckPassword(h, tc.pw+"x") {
				t.Error("hash matches its password with a byte more (bcrypt reads 72 bytes at most)")
			}
		})
	}
	if CheckPassword("", "anything") || CheckPassword("", "") {
		t.Error("an empty hash (no such user) matched")
	}
	if CheckPassword("not-a-bcrypt-hash", "not-a-bcrypt-hash") {
		t.Error("a malformed hash matched")
	}
	h1, _ := HashPassword("correct horse")
	h2, _ := HashPassword("correct horse")
	if h1 == h2 {
		t.Error("two hashes of one password are equal (no salt)")
	}
}

// TestRandomPassword: random passwords are long enough to hash, URL-safe
// and distinct.
func TestRandomPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		pw, err := RandomPassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != 24 || strings.ContainsAny(pw, "+/=") || seen[pw] {
			t.Fatalf("random password %q: want 24 new URL-safe characters", pw)
		}
		seen[pw] = true
		if len(seen) == 1 { // bcrypt is slow: one is enough
			if _, err := HashPassword(pw); err != nil {
				t.Errorf("a random password is refused: %v", err)
			}
		}
	}
}

// TestKeySet: a token is verified with the key its kid names; one without
// kid (issued before keys had ids) only with the legacy key; a key dropped
// from the set verifies nothing any more.
func TestKeySet(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	a, b, c := newKey(t), newKey(t), newKey(t)
	kidOf := func(k ed25519.PrivateKey) string { return KeyID(k.Public().(ed25519.PublicKey)) }
	ka, kb := Key{ID: kidOf(a), Priv: a, Legacy: true}, Key{ID: kidOf(b), Priv: b}
	s, err := NewKeySigner(kb.ID, []Key{ka, kb}, 15*time.Minute, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.now = (&clock{t0}).now
	sign := func(key ed25519.PrivateKey, kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, Claims{Kind: KindAccess, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: issuer, Subject: "alice", ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour))}})
		if kid != "" {
			tok.Header["kid"] = kid
		}
		out, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	issued, claims, err := s.IssueIn("alice", "user", KindAccess, "fam-1")
	if err != nil || claims.Family != "fam-1" {
		t.Fatalf("IssueIn: %+v, %v", claims, err)
	}
	cases := []struct {
		name  string
		token string
		ok    bool
	}{
		{"issued: the current key", issued, true},
		{"earlier key, named", sign(a, ka.ID), true},
		{"no kid, legacy key", sign(a, ""), true},
		{"no kid, another key", sign(b, ""), false},
		{"unknown kid", sign(c, kidOf(c)), false},
		{"kid of one key, signed by another", sign(c, kb.ID), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.Verify(tc.token, KindAccess)
			if tc.ok && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", c, err)
			}
		})
	}
	if got, _ := s.Verify(issued, KindAccess); got == nil || got.Family != "fam-1" {
		t.Errorf("family of the issued token: %+v", got)
	}

	// The legacy key dropped: its tokens, named or not, are refused.
	if err := s.SetKeys(kb.ID, []Key{kb}); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{sign(a, ka.ID), sign(a, "")} {
		if _, err := s.Verify(tok, KindAccess); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("token of a dropped key: %v", err)
		}
	}
	if _, err := s.Verify(issued, KindAccess); err != nil {
		t.Errorf("current key's token: %v", err)
	}
	if s.CurrentKey() != kb.ID {
		t.Errorf("CurrentKey = %q", s.CurrentKey())
	}

	// A set without its current key, or with a broken key, is refused and
	// changes nothing.
	for _, bad := range [][]Key{{ka}, {kb, {ID: "x", Priv: ed25519.PrivateKey{1, 2}}}} {
		if err := s.SetKeys(kb.ID, bad); err == nil {
			t.Errorf("SetKeys(%d keys) accepted", len(bad))
		}
	}
	if _, err := s.Verify(issued, KindAccess); err != nil {
		t.Errorf("after refused SetKeys: %v", err)
	}
}

// TestVerifiedTokensRemembered: a token verified once is not decoded
// again, but what Verify says of it is what a full verification would say:
// refused once expired, refused as another kind, refused once the key set
// no longer holds its key; the remembered tokens stay bounded.
func TestVerifiedTokensRemembered(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	a, b := newKey(t), newKey(t)
	kidOf := func(k ed25519.PrivateKey) string { return KeyID(k.Public().(ed25519.PublicKey)) }
	ka, kb := Key{ID: kidOf(a), Priv: a}, Key{ID: kidOf(b), Priv: b}
	s, err := NewKeySigner(ka.ID, []Key{ka, kb}, 15*time.Minute, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t0}
	s.now = clk.now
	tok, _, err := s.IssueIn("alice", "user", KindAccess, "fam-1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		c, err := s.Verify(tok, KindAccess)
		if err != nil || c.Subject != "alice" || c.Family != "fam-1" {
			t.Fatalf("use %d: %+v, %v", i, c, err)
		}
		c.Subject = "mallory" // a caller's copy: changes nothing remembered
	}
	s.mu.RLock()
	_, remembered := s.verified[tok]
	s.mu.RUnlock()
	if !remembered {
		t.Fatal("a verified token is not remembered")
	}
	if c, err := s.Verify(tok, KindAccess); err != nil || c.Subject != "alice" {
		t.Fatalf("remembered token: %+v, %v", c, err)
	}
	if _, err := s.Verify(tok, KindRefresh); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("remembered access token accepted as a refresh token: %v", err)
	}

	// Expired: refused, though remembered.
	clk.t = t0.Add(15*time.Minute + time.Millisecond)
	if _, err := s.Verify(tok, KindAccess); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("remembered token after its expiry: %v", err)
	}
	clk.t = t0.Add(time.Minute)
	if _, err := s.Verify(tok, KindAccess); err != nil {
		t.Fatalf("within its lifetime again: %v", err)
	}

	// Its key dropped from the set: refused.
	if err := s.SetKeys(kb.ID, []Key{kb}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(tok, KindAccess); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("remembered token of a dropped key: %v", err)
	}

	// Bounded.
	for range maxVerified + 10 {
		tok, _, err := s.IssueIn("bob", "user", KindAccess, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Verify(tok, KindAccess); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.RLock()
	n := len(s.verified)
	s.mu.RUnlock()
	if n > maxVerified {
		t.Errorf("%d tokens remembered, more than %d", n, maxVerified)
	}
}
