package httpapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// nodeNameRE is the form of a node name (the cluster's node API checks
// the same).
var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func restNodeToken(t state.NodeToken, now time.Time) api.NodeToken {
	return api.NodeToken{ID: t.ID, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, SingleUse: t.SingleUse, NodeName: t.NodeName,
		UsedAt: t.UsedAt, UsedBy: t.UsedBy, State: t.State(now)}
}

// listNodeTokens lists a cluster's node join tokens (without secrets).
func (s *Server) listNodeTokens(c echo.Context) error {
	cl := clusterByIDOrName(s.state.Snapshot(), c.Param("id"))
	if cl == nil {
		return errNotFound
	}
	now := time.Now()
	out := make([]api.NodeToken, 0, len(cl.NodeTokens))
	for _, t := range cl.NodeTokens {
		out = append(out, restNodeToken(t, now))
	}
	return c.JSON(http.StatusOK, out)
}

// createNodeToken issues a node join token for a cluster; the token is
// shown only in this answer, with the pin of the cluster's CA when the
// cluster told it. It expires after expires_in (default 24h; "never" only
// when asked), may be single_use and scoped to one node_name.
func (s *Server) createNodeToken(c echo.Context) error {
	cl := clusterByIDOrName(s.state.Snapshot(), c.Param("id"))
	if cl == nil {
		return errNotFound
	}
	var req api.NodeTokenRequest
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	if req.NodeName != "" && !nodeNameRE.MatchString(req.NodeName) {
		return errBadRequest("node_name must match "+nodeNameRE.String(), "node_name")
	}
	ttl, err := tokenTTL(req.ExpiresIn)
	if err != nil {
		return err
	}
	secret, tok, tk, err := s.state.CreateNodeToken(cl.ID, state.NodeTokenSpec{TTL: ttl, SingleUse: req.SingleUse, NodeName: req.NodeName})
	switch {
	case errors.Is(err, state.ErrNotFound):
		return errNotFound
	case errors.Is(err, state.ErrTooManyTokens):
		return &Error{Status: http.StatusConflict, Message: err.Error()}
	case err != nil:
		return err
	}
	if err := s.durable(c, tk); err != nil {
		return err
	}
	out := api.NewNodeToken{NodeToken: restNodeToken(tok, time.Now()), Token: secret, Cluster: cl.Name}
	if cl.CAPin != "" {
		full, err := pki.JoinToken(cl.CAPin, secret)
		if err != nil {
			return err
		}
		out.Token, out.Pinned = full, true
	}
	if cl.Address != "" && cl.Port > 0 {
		out.ClusterURL = "https://" + net.JoinHostPort(cl.Address, strconv.Itoa(cl.Port))
	}
	s.log.Info("node join token created", "cluster", cl.Name, "token", tok.ID, "expires_at", tok.ExpiresAt, "single_use", tok.SingleUse,
		"node_name", tok.NodeName, "pinned", out.Pinned, "by", caller(c).Username)
	return c.JSON(http.StatusOK, out)
}

// deleteNodeToken revokes a cluster's node join token: the cluster's watch
// answers at once with the list without it.
func (s *Server) deleteNodeToken(c echo.Context) error {
	cl := clusterByIDOrName(s.state.Snapshot(), c.Param("id"))
	if cl == nil {
		return errNotFound
	}
	tk, err := s.state.RevokeNodeToken(cl.ID, c.Param("token"))
	if errors.Is(err, state.ErrNotFound) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	if err := s.durable(c, tk); err != nil {
		return err
	}
	s.log.Info("node join token revoked", "cluster", cl.Name, "token", c.Param("token"), "by", caller(c).Username)
	return message(c, fmt.Sprintf("node join token %s of cluster %s revoked; the cluster admits no node by it within seconds", c.Param("token"), cl.Name))
}
