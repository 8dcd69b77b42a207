package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/thicket-edge/thicket/root_orchestrator/internal/auth"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// TestRevoked: a password change refuses the tokens issued before it and
// accepts those issued in its millisecond or after it, also when the
// token's issue time comes back from its JSON a millisecond early (a
// decimal fraction of a second, truncated).
func TestRevoked(t *testing.T) {
	// A millisecond instant whose decimal seconds read back below it.
	change := time.UnixMilli(1733450000123)
	for _, tc := range []struct {
		name    string
		issued  time.Time
		revoked bool
	}{
		{"issued two milliseconds before the change", change.Add(-2 * time.Millisecond), true},
		{"issued a second before", change.Add(-time.Second), true},
		{"issued in the millisecond of the change", change, false},
		{"issued after", change.Add(time.Millisecond), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(auth.Claims{RegisteredClaims: jwt.RegisteredClaims{IssuedAt: jwt.NewNumericDate(tc.issued)}})
			if err != nil {
				t.Fatal(err)
			}
			var c auth.Claims
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			if got := revoked(&c, &store.UserRecord{TokensAfter: change}); got != tc.revoked {
				t.Errorf("revoked = %v, want %v (iat %s read back as %s)", got, tc.revoked, b, c.IssuedAt.Time.Format(time.RFC3339Nano))
			}
		})
	}
	if !revoked(&auth.Claims{}, &store.UserRecord{}) {
		t.Error("a token without an issue time is accepted")
	}
}
