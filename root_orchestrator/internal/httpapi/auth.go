package httpapi

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/auth"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/changefeed"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// UsernameRE is the form of a user name.
var UsernameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// clusterNameRE is the form of a cluster name (as the SLA's constraints
// name clusters).
var clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// principal is the authenticated caller.
type principal struct {
	Username string
	Role     string
}

func (p principal) admin() bool { return p.Role == api.RoleAdmin }

const principalKey = "thicket.principal"

func caller(c echo.Context) principal {
	p, _ := c.Get(principalKey).(principal)
	return p
}

func bearer(c echo.Context) string {
	h := c.Request().Header.Get(echo.HeaderAuthorization)
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// authenticate admits requests with a valid access token of a user who
// still exists and has not changed password since it was issued, of a
// session that is not revoked. The role is the user's current one, not the
// token's.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		claims, err := s.signer.Verify(bearer(c), auth.KindAccess)
		if err != nil {
			return errUnauthorized
		}
		u, err := s.users.get(c.Request().Context(), claims.Subject)
		if errors.Is(err, store.ErrNotFound) || (err == nil && revoked(claims, u)) {
			return errUnauthorized
		} else if err != nil {
			return err
		}
		if claims.Family != "" {
			if ok, err := s.families.get(c.Request().Context(), claims.Family); err != nil {
				return err
			} else if !ok {
				return errUnauthorized
			}
		}
		c.Set(principalKey, principal{Username: u.Username, Role: u.Role})
		return next(c)
	}
}

// revoked reports whether a token was issued before the user's last
// password change. Both times are milliseconds, but the token's travels as
// a decimal fraction of a second that the JWT library reads back truncated,
// up to a millisecond early: a token issued in the millisecond of the
// change, or the one before, counts as issued after it.
func revoked(c *auth.Claims, u *store.UserRecord) bool {
	return c.IssuedAt == nil || c.IssuedAt.Time.Add(time.Millisecond).Before(u.TokensAfter.Truncate(time.Millisecond))
}

func adminOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !caller(c).admin() {
			return errForbidden
		}
		return next(c)
	}
}

func (s *Server) login(c echo.Context) error {
	var req api.LoginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Username == "" {
		return errBadRequest("username is required", "username")
	}
	if req.Password == "" {
		return errBadRequest("password is required", "password")
	}
	u, err := s.store.GetUser(c.Request().Context(), req.Username)
	hash := ""
	if err == nil {
		hash = u.PasswordHash
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if ok, err := s.passwords.check(c, req.Username, hash, req.Password); err != nil {
		return err
	} else if !ok {
		return &Error{Status: http.StatusUnauthorized, Message: "wrong username or password"}
	}
	return s.issue(c, u.Username, u.Role, "", "")
}

// refresh trades a refresh token, from the Authorization header as the
// reference takes it or from the body, for a new access and refresh token
// of its session (sessions.go); the token is spent. The user must still
// exist and not have changed password since. A refresh token from before
// sessions had families starts a new session.
func (s *Server) refresh(c echo.Context) error {
	tok := bearer(c)
	if tok == "" {
		var body struct {
			RefreshToken string `json:"refresh_token"`
		}
		if c.Request().ContentLength != 0 {
			if err := decodeJSON(c, &body); err != nil {
				return err
			}
		}
		tok = body.RefreshToken
	}
	claims, err := s.signer.Verify(tok, auth.KindRefresh)
	if err != nil {
		return errUnauthorized
	}
	u, err := s.store.GetUser(c.Request().Context(), claims.Subject)
	if errors.Is(err, store.ErrNotFound) || (err == nil && revoked(claims, u)) {
		return errUnauthorized
	} else if err != nil {
		return err
	}
	return s.issue(c, u.Username, u.Role, claims.Family, claims.ID)
}

func (s *Server) listUsers(c echo.Context) error {
	users, err := s.store.ListUsers(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, users)
}

func validRole(r string) bool { return r == api.RoleAdmin || r == api.RoleUser }

func (s *Server) createUser(c echo.Context) error {
	var req api.NewUser
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if !UsernameRE.MatchString(req.Username) {
		return errBadRequest("username must match "+UsernameRE.String(), "username")
	}
	if req.Role == "" {
		req.Role = api.RoleUser
	}
	if !validRole(req.Role) {
		return errBadRequest("role must be admin or user", "role")
	}
	hash, err := auth.HashPassword(req.Password)
	if err != nil {
		return errBadRequest(err.Error(), "password")
	}
	rec := store.UserRecord{Username: req.Username, PasswordHash: hash, Role: req.Role}
	if err := s.store.CreateUser(c.Request().Context(), rec); err != nil {
		return err
	}
	s.noteAdminChange(changefeed.KindUser, req.Username)
	u, err := s.store.GetUser(c.Request().Context(), req.Username)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.User{Username: u.Username, Role: u.Role, CreatedAt: u.CreatedAt})
}

func (s *Server) getUser(c echo.Context) error {
	p, name := caller(c), c.Param("username")
	if !p.admin() && p.Username != name {
		return errForbidden
	}
	u, err := s.store.GetUser(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.User{Username: u.Username, Role: u.Role, CreatedAt: u.CreatedAt, Quota: u.Quota})
}

// updateUser lets an admin reset a user's password or change the role.
func (s *Server) updateUser(c echo.Context) error {
	var req api.UserUpdate
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx, name := c.Request().Context(), c.Param("username")
	if req.Role != "" && !validRole(req.Role) {
		return errBadRequest("role must be admin or user", "role")
	}
	if req.Role != "" && req.Role != api.RoleAdmin && name == caller(c).Username {
		return errBadRequest("you cannot remove your own admin role", "role")
	}
	var hash string
	if req.Password != "" {
		var err error
		if hash, err = auth.HashPassword(req.Password); err != nil {
			return errBadRequest(err.Error(), "password")
		}
	}
	if req.Password == "" && req.Role == "" {
		return errBadRequest("give a new password or role", "password")
	}
	if err := s.store.UpdateUser(ctx, name, hash, req.Role); err != nil {
		return err
	}
	s.users.forget(name)
	// A new password revokes the user's tokens; a new role changes what
	// their streams may see: either way the streams end now.
	s.endStreams(name, "")
	s.noteAdminChange(changefeed.KindUser, name)
	return s.getUser(c)
}

// changeOwnPassword: a user changes their own password, giving the old one.
// Field names of the reference (oldPassword, newPassword) are accepted.
func (s *Server) changeOwnPassword(c echo.Context) error {
	// The reference's field names, or Thicket's snake_case ones.
	var req struct {
		api.PasswordChange
		OldPasswordSnake string `json:"old_password"`
		Password         string `json:"password"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p, name := caller(c), c.Param("username")
	if p.Username != name {
		return errForbidden
	}
	old, pw := cmp.Or(req.OldPassword, req.OldPasswordSnake), cmp.Or(req.NewPassword, req.Password)
	ctx := c.Request().Context()
	u, err := s.store.GetUser(ctx, name)
	if err != nil {
		return err
	}
	if ok, err := s.passwords.check(c, name, u.PasswordHash, old); err != nil {
		return err
	} else if !ok {
		return errBadRequest("old password is wrong", "oldPassword")
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return errBadRequest(err.Error(), "newPassword")
	}
	if err := s.store.UpdateUser(ctx, name, hash, ""); err != nil {
		return err
	}
	s.users.forget(name)
	s.endStreams(name, "") // their tokens are revoked
	s.noteAdminChange(changefeed.KindUser, name)
	return message(c, "password changed")
}

// deleteUser removes an account and answers with the remaining users, as
// the reference does. Admins cannot delete themselves, and an account that
// still owns applications is kept: a later account of the same name would
// otherwise inherit them.
func (s *Server) deleteUser(c echo.Context) error {
	ctx, name := c.Request().Context(), c.Param("username")
	if name == caller(c).Username {
		return errBadRequest("you cannot delete your own account", "username")
	}
	if apps := s.state.Snapshot().Apps(name); len(apps) > 0 {
		return &store.ConflictError{Field: "username", Message: fmt.Sprintf("user %s still owns %d applications; delete them first", name, len(apps))}
	}
	if err := s.store.DeleteUser(ctx, name); err != nil {
		return err
	}
	s.users.forget(name)
	s.endStreams(name, "")
	s.noteAdminChange(changefeed.KindUser, name)
	return s.listUsers(c)
}
