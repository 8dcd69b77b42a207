package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/changefeed"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// Quotas (README: Quotas): an admin sets a user's quota; the user and the
// admins read it with what the user's instances take of it; a new instance
// beyond it is refused with 409 naming the quota and the numbers.

// quotaStatus is a user's quota and usage.
func (s *Server) quotaStatus(c echo.Context, name string) error {
	u, err := s.store.GetUser(c.Request().Context(), name)
	if err != nil {
		return err
	}
	st := api.QuotaStatus{Username: u.Username}
	if u.Quota != nil {
		st.Quota = *u.Quota
	}
	used := s.state.Snapshot().Usage(u.Username)
	st.Used = api.Quota{Instances: used.Instances, MilliCPU: used.MilliCPU, MemoryMB: used.MemoryMB}
	return c.JSON(http.StatusOK, st)
}

// getOwnQuota answers GET /api/quota.
func (s *Server) getOwnQuota(c echo.Context) error { return s.quotaStatus(c, caller(c).Username) }

// getQuota answers GET /api/users/{name}/quota: the user's own, or anyone's
// for an admin.
func (s *Server) getQuota(c echo.Context) error {
	p, name := caller(c), c.Param("username")
	if !p.admin() && p.Username != name {
		return errForbidden
	}
	return s.quotaStatus(c, name)
}

// setQuota answers PUT /api/users/{name}/quota (admins).
func (s *Server) setQuota(c echo.Context) error {
	var q api.Quota
	if err := decodeJSON(c, &q); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"instances", int64(q.Instances)}, {"milli_cpu", q.MilliCPU}, {"memory_mb", q.MemoryMB}} {
		if f.v < 0 {
			return errBadRequest(f.name+" must not be negative (0: no bound)", f.name)
		}
	}
	name := c.Param("username")
	if err := s.store.SetQuota(c.Request().Context(), name, q); err != nil {
		return err
	}
	s.users.forget(name) // ownerQuota reads it there
	s.noteAdminChange(changefeed.KindUser, name)
	return s.quotaStatus(c, name)
}

// ownerQuota is the quota of a service's owner, for the state to check.
// It comes from the user cache, as authentication's user does: no store
// round trip per new instance; a quota set through this root applies at
// once (setQuota forgets the cached user), one set through another
// replica within the cache's lifetime.
func (s *Server) ownerQuota(c echo.Context, owner string) (state.Quota, error) {
	u, err := s.users.get(c.Request().Context(), owner)
	if errors.Is(err, store.ErrNotFound) {
		return state.Quota{}, nil // an owner without an account (deleted): no quota to apply
	}
	if err != nil {
		return state.Quota{}, fmt.Errorf("quota of %s: %w", owner, err)
	}
	if u.Quota == nil {
		return state.Quota{}, nil
	}
	return state.Quota{Instances: u.Quota.Instances, MilliCPU: u.Quota.MilliCPU, MemoryMB: u.Quota.MemoryMB}, nil
}

// quotaErr turns a state.QuotaError into a 409 naming the quota.
func quotaErr(err error) error {
	var qe *state.QuotaError
	if errors.As(err, &qe) {
		return &Error{Status: http.StatusConflict, Message: qe.Error(), Field: "quota." + qe.Resource}
	}
	return err
}
