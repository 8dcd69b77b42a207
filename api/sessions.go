package api

import (
	"context"
	"net/http"
	"time"
)

// LogoutRequest is the (optional) body of POST /api/auth/logout: the
// session's refresh token, whose session ends with the access token's.
type LogoutRequest struct {
	RefreshToken string `json:"refresh_token,omitempty"`
}

// SigningKey is one of the root's token signing keys as GET /api/auth/keys
// lists it: its id (the "kid" of the tokens it signs), never the key.
type SigningKey struct {
	ID        string    `json:"kid"`
	CreatedAt time.Time `json:"created_at"`
	// RetiredAt is when a newer key replaced it; a retired key verifies
	// tokens until the longest token lifetime has passed, then it is dropped.
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	Current   bool       `json:"current"`
}

// Logout ends the client's session at the root: its access and refresh
// tokens, and every token refreshed from the same login, stop working. The
// client forgets the session (without calling OnSession). It does not
// renew the session first: the root takes either token. A session the
// root no longer accepts counts as ended.
func (c *Client) Logout(ctx context.Context) error {
	s := c.Session()
	if s.Token == "" && s.RefreshToken == "" {
		return ErrNotLoggedIn
	}
	b, err := encode(LogoutRequest{RefreshToken: s.RefreshToken})
	if err != nil {
		return err
	}
	r, err := c.send(ctx, http.MethodPost, "/api/auth/logout", s.Token, b)
	if err != nil {
		return err
	}
	switch r.Status {
	case http.StatusNoContent, http.StatusOK, http.StatusUnauthorized:
		c.forget()
		return nil
	}
	return decode(r, nil)
}

func (c *Client) forget() {
	c.mu.Lock()
	c.session = Session{}
	c.mu.Unlock()
}

// SigningKeys lists the root's token signing keys (admins only).
func (c *Client) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	return get[[]SigningKey](ctx, c, "/api/auth/keys")
}

// RotateSigningKey makes a new current signing key (admins only) and
// returns the keys. Tokens signed with earlier keys stay valid until they
// expire.
func (c *Client) RotateSigningKey(ctx context.Context) ([]SigningKey, error) {
	var out []SigningKey
	return out, c.Do(ctx, http.MethodPost, "/api/auth/keys/rotate", nil, &out)
}
