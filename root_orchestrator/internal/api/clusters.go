package api

import (
	"encoding/json"
	"errors"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// SyncInterval is how often clusters are asked to sync.
const SyncInterval = 1000 // ms

func checkVersion(v string) error {
	if v != wire.Version {
		return errBadRequest("protocol version "+strconvQuote(v)+" not supported; this root speaks "+wire.Version, "version")
	}
	return nil
}

func strconvQuote(s string) string { return strconv.Quote(s) }

// registerCluster admits a cluster with a join token and gives it its
// credential. The cluster dials the root, so a cluster behind NAT works.
func (s *Server) registerCluster(c echo.Context) error {
	var req wire.ClusterRegisterRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := checkVersion(req.Version); err != nil {
		return err
	}
	if !clusterNameRE.MatchString(req.Name) {
		return errBadRequest("cluster_name must match "+clusterNameRE.String(), "cluster_name")
	}
	id, cred, err := s.store.RegisterCluster(c.Request().Context(), bearer(c), req)
	if errors.Is(err, store.ErrBadCredential) {
		return &Error{Status: http.StatusUnauthorized, Message: "invalid join token"}
	} else if err != nil {
		return err
	}
	block, _, err := s.store.ClusterNetwork(c.Request().Context(), id)
	if err != nil {
		return err
	}
	s.log.Info("cluster registered", "cluster", req.Name, "id", id, "location", req.Location, "block", block)
	return c.JSON(http.StatusOK, wire.ClusterRegisterResponse{ClusterID: id, Credential: cred, Block: block})
}

// syncCluster takes a cluster's report and answers its desired set.
func (s *Server) syncCluster(c echo.Context) error {
	ctx := c.Request().Context()
	cl, err := s.store.AuthenticateCluster(ctx, bearer(c))
	if errors.Is(err, store.ErrBadCredential) {
		return &Error{Status: http.StatusUnauthorized, Message: "invalid cluster credential"}
	} else if err != nil {
		return err
	}
	var req wire.ClusterSync
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := checkVersion(req.Version); err != nil {
		return err
	}
	if err := s.store.RecordClusterSync(ctx, cl.ID, req.Nodes); err != nil {
		return err
	}
	freed, err := s.store.ApplyClusterReport(ctx, cl, req.Instances)
	if err != nil {
		return err
	}
	if freed > 0 || !cl.Active {
		s.kick()
	}
	desired, err := s.store.DesiredForCluster(ctx, cl.ID)
	if err != nil {
		return err
	}
	block, network, err := s.store.ClusterNetwork(ctx, cl.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.ClusterDesired{
		Version: wire.Version, Generation: generation(desired), Instances: desired, SyncIntervalMS: SyncInterval,
		Block: block, Network: network,
	})
}

// generation fingerprints a desired set, so a cluster can tell whether it
// changed.
func generation(specs []wire.InstanceSpec) int64 {
	h := fnv.New64a()
	_ = json.NewEncoder(h).Encode(specs)
	return int64(h.Sum64() >> 1)
}

func (s *Server) listJoinTokens(c echo.Context) error {
	toks, err := s.store.ListJoinTokens(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toks)
}

// createJoinToken makes a cluster join token; the token itself is shown
// only in this answer.
func (s *Server) createJoinToken(c echo.Context) error {
	var req struct {
		Name string `json:"name"`
	}
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	if len(req.Name) > 100 {
		return errBadRequest("name is longer than 100 characters", "name")
	}
	tok, jt, err := s.store.CreateJoinToken(c.Request().Context(), req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"id": jt.ID, "name": jt.Name, "created_at": jt.CreatedAt, "token": tok})
}

func (s *Server) deleteJoinToken(c echo.Context) error {
	if err := s.store.DeleteJoinToken(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return message(c, "join token revoked")
}

// instanceLogs answers the last lines of an instance's output, as its node
// last reported them: ?lines=N (default 100).
func (s *Server) instanceLogs(c echo.Context) error {
	n, err := strconv.Atoi(c.Param("n"))
	if err != nil || n < 0 {
		return errBadRequest("instance number "+strconvQuote(c.Param("n"))+" is not a non-negative integer", "n")
	}
	lines := 100
	if q := c.QueryParam("lines"); q != "" {
		if lines, err = strconv.Atoi(q); err != nil || lines < 1 {
			return errBadRequest("lines must be a positive integer", "lines")
		}
	}
	svc, err := s.ownedService(c, c.Param("id"))
	if err != nil {
		return err
	}
	for _, in := range svc.InstanceList {
		if in.InstanceNumber == n {
			return c.JSON(http.StatusOK, map[string]any{"instance_number": n, "status": in.Status, "logs": lastLines(in.Logs, lines)})
		}
	}
	return errNotFound
}

func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	i := len(s)
	for range n {
		j := strings.LastIndexByte(s[:i], '\n')
		if j < 0 {
			return s + "\n"
		}
		i = j
	}
	return s[i+1:] + "\n"
}
