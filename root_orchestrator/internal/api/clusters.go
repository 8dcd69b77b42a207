package api

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"time"

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
	now := time.Now()
	if !cl.Active {
		s.reports.forget(cl.ID)
	}
	// The node list (with every node's usage) is stored when it changed and
	// at most every metricsEvery otherwise; a sync in between only marks
	// the cluster seen.
	if write, sum := s.reports.nodesChanged(cl.ID, req.Nodes, now); write {
		if err := s.store.RecordClusterSync(ctx, cl.ID, req.Nodes); err != nil {
			s.reports.forget(cl.ID)
			return err
		}
		s.reports.nodesStored(cl.ID, sum, now)
	} else if err := s.store.TouchCluster(ctx, cl.ID); err != nil {
		return err
	}
	todo := s.reports.changed(cl.ID, req.Instances, now)
	freed, changed, err := s.store.ApplyClusterReport(ctx, cl, todo)
	if err != nil {
		s.reports.forget(cl.ID)
		return err
	}
	s.reports.stored(cl.ID, todo, now)
	if freed > 0 || !cl.Active {
		s.kick()
	}
	if changed > 0 {
		s.Changed() // other clusters' service tables may change
	}
	d, err := s.desired(ctx, cl.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

// desired is a cluster's desired set and network, with its generation.
func (s *Server) desired(ctx context.Context, clusterID string) (wire.ClusterDesired, error) {
	specs, err := s.store.DesiredForCluster(ctx, clusterID)
	if err != nil {
		return wire.ClusterDesired{}, err
	}
	block, network, err := s.store.ClusterNetwork(ctx, clusterID)
	if err != nil {
		return wire.ClusterDesired{}, err
	}
	d := wire.ClusterDesired{Version: wire.Version, Instances: specs, SyncIntervalMS: SyncInterval, Block: block, Network: network}
	d.Generation = generation(d)
	return d, nil
}

// watchDesired answers a cluster's desired set as soon as it differs from
// the generation the cluster has (?after=), or after ?wait= (default 25 s,
// at most 60 s) with the current one. Clusters hold one such request open,
// so changes reach them at once instead of at their next sync.
func (s *Server) watchDesired(c echo.Context) error {
	ctx := c.Request().Context()
	cl, err := s.store.AuthenticateCluster(ctx, bearer(c))
	if errors.Is(err, store.ErrBadCredential) {
		return &Error{Status: http.StatusUnauthorized, Message: "invalid cluster credential"}
	} else if err != nil {
		return err
	}
	after, _ := strconv.ParseInt(c.QueryParam("after"), 10, 64)
	wait := 25 * time.Second
	if q := c.QueryParam("wait"); q != "" {
		if wait, err = time.ParseDuration(q); err != nil || wait < 0 || wait > time.Minute {
			return errBadRequest("wait must be a duration up to 1m", "wait")
		}
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		changed := s.changes.Wait() // before reading, so no change is missed
		d, err := s.desired(ctx, cl.ID)
		if err != nil {
			return err
		}
		if d.Generation != after {
			return c.JSON(http.StatusOK, d)
		}
		select {
		case <-changed:
		case <-deadline.C:
			return c.JSON(http.StatusOK, d)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// generation fingerprints a desired set and network, so a cluster can tell
// whether they changed.
func generation(d wire.ClusterDesired) int64 {
	d.Generation = 0
	h := fnv.New64a()
	_ = json.NewEncoder(h).Encode(d)
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
