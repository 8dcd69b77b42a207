package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/auth"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// Sessions. A login starts a session (a token family, store.SessionRecord):
// its access and refresh tokens carry the family's id. A refresh spends the
// refresh token and answers a new pair; presenting a spent refresh token
// again means two parties hold it, so the whole family is revoked. A logout
// revokes the family too. Access tokens of a revoked family are refused
// within familyTTL (every replica caches a family's state that long).

var mRefreshReused = promauto.NewCounter(prometheus.CounterOpts{
	Namespace: "thicket_root", Name: "refresh_token_reuse_total",
	Help: "Spent refresh tokens presented again; each revoked its session.",
})

// familyTTL is how long a session's state is cached (cache).
const familyTTL = 2 * time.Second

// issue answers a new access and refresh token. With no family it starts a
// session; else it continues family, spending its refresh token spent.
func (s *Server) issue(c echo.Context, username, role, family, spent string) error {
	ctx := c.Request().Context()
	start := family == ""
	if start {
		var err error
		if family, err = auth.NewID(); err != nil {
			return err
		}
	}
	access, _, err := s.signer.IssueIn(username, role, auth.KindAccess, family)
	if err != nil {
		return err
	}
	refresh, rc, err := s.signer.IssueIn(username, role, auth.KindRefresh, family)
	if err != nil {
		return err
	}
	if start {
		err = s.store.CreateSession(ctx, family, username, rc.ID, rc.ExpiresAt.Time)
	} else {
		err = s.store.RotateSession(ctx, family, spent, rc.ID, rc.ExpiresAt.Time)
	}
	switch {
	case errors.Is(err, store.ErrRefreshReused):
		mRefreshReused.Inc()
		s.families.set(family, false)
		s.endStreams(username, family)
		s.log.Warn("a spent refresh token was presented again: its session is revoked", "user", username, "session", family)
		return errUnauthorized
	case errors.Is(err, store.ErrSessionRevoked), errors.Is(err, store.ErrNotFound):
		s.families.set(family, false)
		return errUnauthorized
	case err != nil:
		return err
	}
	s.families.set(family, true)
	return c.JSON(http.StatusOK, api.Tokens{
		Token: access, RefreshToken: refresh,
		ExpiresIn: int(s.signer.AccessTTL / time.Second),
		Username:  username, Role: role,
	})
}

// logout ends a session: that of the access token in the Authorization
// header and that of the refresh token in the body. Either suffices, so
// that a client whose access token has expired logs out without a refresh
// (which would spend its refresh token); a token that does not verify is
// ignored when the other one does.
func (s *Server) logout(c echo.Context) error {
	var body api.LogoutRequest
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &body); err != nil {
			return err
		}
	}
	var families []string
	user := ""
	if ac, err := s.signer.Verify(bearer(c), auth.KindAccess); err == nil {
		families, user = append(families, ac.Family), ac.Subject
	}
	if rc, err := s.signer.Verify(body.RefreshToken, auth.KindRefresh); err == nil {
		if user != "" && rc.Subject != user {
			return errBadRequest("refresh_token belongs to another user", "refresh_token")
		}
		families, user = append(families, rc.Family), rc.Subject
	} else if body.RefreshToken != "" && user != "" {
		return errBadRequest("refresh_token is not a valid refresh token", "refresh_token")
	}
	if user == "" {
		return errUnauthorized
	}
	ctx := c.Request().Context()
	for _, f := range families {
		if f == "" { // a token from before sessions: it expires on its own
			continue
		}
		if err := s.store.RevokeSession(ctx, f); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		s.families.set(f, false)
		s.endStreams(user, f)
	}
	return c.NoContent(http.StatusNoContent)
}

// CollectSessions deletes expired sessions and idempotency keys now and
// then, until ctx ends.
func (s *Server) CollectSessions(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.store.DeleteExpiredSessions(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("delete expired sessions", "err", err)
		} else if n > 0 {
			s.log.Debug("deleted expired sessions", "count", n)
		}
		if n, err := s.store.DeleteExpiredIdempotency(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("delete expired idempotency keys", "err", err)
		} else if n > 0 {
			s.log.Debug("deleted expired idempotency keys", "count", n)
		}
		s.keys.expire(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// keyLifetime is how long a retired signing key keeps verifying: the
// longest lifetime of a token it signed.
func (s *Server) keyLifetime() time.Duration { return max(s.signer.AccessTTL, s.signer.RefreshTTL) }

func signingKeys(ks *store.SigningKeySet) []api.SigningKey {
	out := make([]api.SigningKey, 0, len(ks.Keys))
	for _, k := range ks.Keys {
		sk := api.SigningKey{ID: k.ID, CreatedAt: k.CreatedAt, Current: k.ID == ks.Current}
		if !k.RetiredAt.IsZero() {
			t := k.RetiredAt
			sk.RetiredAt = &t
		}
		out = append(out, sk)
	}
	return out
}

// listSigningKeys shows the signing keys (ids and times, never the keys).
func (s *Server) listSigningKeys(c echo.Context) error {
	ks, err := s.store.SigningKeys(c.Request().Context(), s.keyLifetime())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, signingKeys(ks))
}

// rotateSigningKey makes a new current signing key. Tokens signed with the
// earlier keys stay valid until they expire.
func (s *Server) rotateSigningKey(c echo.Context) error {
	ks, err := s.store.RotateSigningKey(c.Request().Context(), s.keyLifetime())
	if errors.Is(err, store.ErrKeySetChanged) {
		return &Error{Status: http.StatusConflict, Message: err.Error()}
	}
	if err != nil {
		return err
	}
	if err := s.signer.SetKeys(ks.Current, ks.AuthKeys()); err != nil {
		return err
	}
	s.log.Info("rotated the token signing key", "kid", ks.Current, "by", caller(c).Username)
	return c.JSON(http.StatusOK, signingKeys(ks))
}
