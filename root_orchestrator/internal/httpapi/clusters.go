package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/changefeed"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
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
	csr, err := s.clusterCSR(req.CSRPEM)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	jt, err := s.store.UseJoinToken(ctx, joinSecret(bearer(c)), req.Name)
	var refused *store.TokenRefusal
	switch {
	case errors.Is(err, store.ErrBadCredential):
		return &Error{Status: http.StatusUnauthorized, Message: "invalid join token"}
	case errors.As(err, &refused):
		s.log.Warn("cluster registration refused", "cluster", req.Name, "reason", refused.Reason)
		return &Error{Status: http.StatusUnauthorized, Message: refused.Reason}
	case err != nil:
		return err
	}
	if jt.SingleUse {
		// Spent, or given back below when the registration fails.
		defer s.noteAdminChange(changefeed.KindJoinToken, jt.ID)
	}
	id, cred, block, tk, err := s.state.RegisterCluster(state.Registration{Name: req.Name, Location: req.Location, Address: req.Address, Port: req.Port,
		Credential: req.Credential, Reset: jt.ClusterName == req.Name, CertBound: csr != nil, IssuesCerts: s.clusterCerts != nil})
	if err != nil {
		if uerr := s.store.UnspendJoinToken(context.WithoutCancel(ctx), jt); uerr != nil {
			s.log.Warn("give the join token back", "token", jt.ID, "err", uerr)
		}
		var ce *state.ConflictError
		if errors.As(err, &ce) {
			mTakeovers.Inc()
			s.log.Warn("cluster registration refused: name taken", "cluster", req.Name, "from", c.RealIP())
		}
		if errors.Is(err, state.ErrCertIdentity) {
			mClusterCertRefused.WithLabelValues("api").Inc()
			return errBadRequest(state.ErrCertIdentity.Error(), "csr_pem")
		}
		return err
	}
	if err := s.durable(c, tk); err != nil {
		return err
	}
	s.log.Info("cluster registered", "cluster", req.Name, "id", id, "location", req.Location, "block", block, "join_token", jt.ID, "client_cert", csr != nil)
	ans := wire.ClusterRegisterResponse{ClusterID: id, Credential: cred, Block: block}
	if csr != nil {
		if ans.CertPEM, err = s.clusterCerts.issue(&state.Cluster{ID: id, Name: req.Name}, csr, "register"); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, ans)
}

var mTakeovers = promauto.NewCounter(prometheus.CounterOpts{
	Namespace: "thicket_root", Name: "cluster_takeovers_refused_total",
	Help: "Cluster registrations refused because the name belongs to a registered cluster whose credential they did not show.",
})

// authCluster returns the cluster whose credential the request carries,
// after checking the client certificate the connection presented
// (clustercert.go).
func (s *Server) authCluster(c echo.Context) (*state.Cluster, error) {
	cl, err := s.state.Snapshot().AuthenticateCluster(bearer(c))
	if errors.Is(err, state.ErrBadCredential) {
		return nil, &Error{Status: http.StatusUnauthorized, Message: "invalid cluster credential"}
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.checkClusterCert(c, cl); err != nil {
		return nil, err
	}
	return cl, nil
}

// maxSyncBody bounds a cluster's sync. Clusters keep theirs far below it
// (rootsync's syncBudget); the API's own limit is smaller.
const maxSyncBody = 16 << 20

var mSyncRefused = promauto.NewCounter(prometheus.CounterOpts{
	Namespace: "thicket_root", Name: "cluster_syncs_refused_total",
	Help: "Cluster syncs refused (malformed, too large, another protocol version); the cluster still counts as seen.",
})

// syncCluster takes a cluster's report. A delta-speaking cluster gets an
// acknowledgement (its desired set comes by the watch); others get their
// full desired set, as before.
func (s *Server) syncCluster(c echo.Context) error {
	cl, err := s.authCluster(c)
	if err != nil {
		return err
	}
	c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, maxSyncBody)
	var req wire.ClusterSync
	err = decodeJSON(c, &req)
	if err == nil {
		err = checkVersion(req.Version)
	}
	if err != nil {
		// The cluster is talking: a sync the root cannot take is refused,
		// but it is no sign that the cluster is gone.
		mSyncRefused.Inc()
		s.log.Warn("cluster sync refused", "cluster", cl.Name, "err", err)
		if _, _, terr := s.state.ApplyReport(cl.ID, state.Report{}); terr != nil {
			s.log.Warn("cluster seen", "cluster", cl.Name, "err", terr)
		}
		if errors.Is(err, errTooLarge) { // its message names the API's limit, not the sync's
			return &Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("sync larger than %d MiB", maxSyncBody>>20)}
		}
		return err
	}
	epoch := s.state.Epoch()
	full := !req.Delta || req.Epoch == ""
	res, _, err := s.state.ApplyReport(cl.ID, state.Report{Full: full, Nodes: req.Nodes, GoneNodes: req.GoneNodes,
		Statuses: req.Instances, WantBlocks: req.WantBlocks, NodeTokenUses: req.NodeTokenUses, CAPin: req.CAPin,
		Coordinate: req.Coordinate, Location: req.Location})
	if err != nil {
		return err
	}
	if res.WasInactive {
		s.log.Info("cluster back", "cluster", cl.Name)
	}
	s.takeEvents(cl, req.Events)
	s.takeUsage(cl, &req)
	if req.Delta {
		// A cluster back from lost sends everything at once: which of its
		// copies survive is decided on its full report.
		return c.JSON(http.StatusOK, wire.ClusterSyncAck{Version: wire.Version, Epoch: epoch,
			Resync: !full && (req.Epoch != epoch || res.WasInactive), SyncIntervalMS: SyncInterval})
	}
	return c.JSON(http.StatusOK, s.fullDesired(s.state.Snapshot(), cl.ID))
}

// network is the overlay as of a snapshot, computed once per change of it.
func (s *Server) network(sn *state.Snapshot) ([]wire.NodeNetwork, []wire.ServiceRoute) {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	if s.netAt != sn.NetIndex() || s.netPeers == nil {
		s.netPeers, s.netTable, s.netAt = sn.Peers(), sn.ServiceTable(), sn.NetIndex()
	}
	return s.netPeers, s.netTable
}

// fullDesired is a cluster's whole desired set and network, with a
// fingerprint as generation (for clusters that do not speak deltas).
func (s *Server) fullDesired(sn *state.Snapshot, clusterID string) wire.ClusterDesired {
	d := sn.DesiredFor(clusterID, "", 0, s.state.Epoch())
	peers, table := s.network(sn)
	out := wire.ClusterDesired{Version: wire.Version, Instances: d.Instances, Removed: d.Removed, SyncIntervalMS: SyncInterval,
		Network: state.ClusterNetwork(clusterID, peers, table)}
	out.Block, out.Blocks = blocks(sn, clusterID)
	out.DeletedNodes = deletedNodes(sn, clusterID)
	out.NodeTokens = state.WireNodeTokens(sn.Cluster(clusterID))
	out.CordonedNodes, out.DrainedNodes = nodeModes(sn, clusterID)
	out.Generation = fingerprint(out)
	return out
}

// watchDesired is the route of a cluster's desired set: a blocking query.
// With ?delta=1&epoch=E&after=G it answers, as soon as anything changed for
// the cluster after generation G of epoch E, only the changes (everything if
// E is not this root's epoch or G is too old), or after ?wait= (default 25 s,
// at most 60 s) an empty delta. Without delta (clusters of earlier
// versions) it answers the full set as soon as its fingerprint differs from
// ?after=.
func (s *Server) watchDesired(c echo.Context) error {
	ctx := c.Request().Context()
	cl, err := s.authCluster(c)
	if err != nil {
		return err
	}
	after, _ := strconv.ParseInt(c.QueryParam("after"), 10, 64)
	wait := 25 * time.Second
	if q := c.QueryParam("wait"); q != "" {
		if wait, err = time.ParseDuration(q); err != nil || wait < 0 || wait > time.Minute {
			return errBadRequest("wait must be a duration up to 1m", "wait")
		}
	}
	delta := c.QueryParam("delta") == "1"
	epoch := c.QueryParam("epoch")
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		_, changed := s.state.Changed() // before reading, so no change is missed
		sn := s.state.Snapshot()
		if now := sn.Cluster(cl.ID); now == nil || now.CredentialHash != cl.CredentialHash {
			// Deleted, or registered again: this credential is revoked.
			return &Error{Status: http.StatusUnauthorized, Message: "invalid cluster credential"}
		}
		if !delta {
			if d := s.fullDesired(sn, cl.ID); d.Generation != after {
				return c.JSON(http.StatusOK, d)
			}
		} else if d := sn.DesiredFor(cl.ID, epoch, uint64(max(after, 0)), s.state.Epoch()); !d.Empty() {
			return c.JSON(http.StatusOK, s.deltaAnswer(sn, cl.ID, d))
		}
		select {
		case <-changed:
			// Let a burst of writes gather into one answer.
			time.Sleep(10 * time.Millisecond)
		case <-deadline.C:
			if delta {
				return c.JSON(http.StatusOK, s.deltaAnswer(sn, cl.ID, sn.DesiredFor(cl.ID, epoch, uint64(max(after, 0)), s.state.Epoch())))
			}
			return c.JSON(http.StatusOK, s.fullDesired(sn, cl.ID))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Server) deltaAnswer(sn *state.Snapshot, clusterID string, d state.Desired) wire.ClusterDesired {
	out := wire.ClusterDesired{Version: wire.Version, Generation: int64(sn.Index()), Epoch: s.state.Epoch(),
		Delta: !d.Full, Instances: d.Instances, Removed: d.Removed, SyncIntervalMS: SyncInterval,
		NetworkUnchanged: !d.NetworkChanged}
	out.Block, out.Blocks = blocks(sn, clusterID)
	out.DeletedNodes = deletedNodes(sn, clusterID)
	out.NodeTokens = state.WireNodeTokens(sn.Cluster(clusterID))
	out.CordonedNodes, out.DrainedNodes = nodeModes(sn, clusterID)
	if d.NetworkChanged {
		peers, table := s.network(sn)
		out.Network = state.ClusterNetwork(clusterID, peers, table)
	}
	return out
}

// blocks returns a cluster's first address block and all of them.
func blocks(sn *state.Snapshot, clusterID string) (string, []string) {
	bs := sn.Blocks(clusterID)
	if len(bs) == 0 {
		return "", nil
	}
	return bs[0], bs
}

// fingerprint of a desired set and network, so a cluster of an earlier
// version can tell whether they changed.
func fingerprint(d wire.ClusterDesired) int64 {
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
// only in this answer. It expires after expires_in (a duration, default
// 24h; "never" only when asked), may be single_use, and may be scoped to
// one cluster_name.
func (s *Server) createJoinToken(c echo.Context) error {
	var req struct {
		Name        string `json:"name"`
		ExpiresIn   string `json:"expires_in"`
		SingleUse   bool   `json:"single_use"`
		ClusterName string `json:"cluster_name"`
	}
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	if len(req.Name) > 100 {
		return errBadRequest("name is longer than 100 characters", "name")
	}
	if req.ClusterName != "" && !clusterNameRE.MatchString(req.ClusterName) {
		return errBadRequest("cluster_name must match "+clusterNameRE.String(), "cluster_name")
	}
	ttl, err := tokenTTL(req.ExpiresIn)
	if err != nil {
		return err
	}
	tok, jt, err := s.store.CreateJoinToken(c.Request().Context(), store.JoinTokenSpec{Name: req.Name, TTL: ttl,
		SingleUse: req.SingleUse, ClusterName: req.ClusterName})
	if err != nil {
		return err
	}
	s.noteAdminChange(changefeed.KindJoinToken, jt.ID)
	if tok, err = s.pinned(tok); err != nil {
		return err
	}
	s.log.Info("join token created", "token", jt.ID, "name", jt.Name, "expires_at", jt.ExpiresAt, "single_use", jt.SingleUse,
		"cluster_name", jt.ClusterName, "by", caller(c).Username)
	return c.JSON(http.StatusOK, struct {
		*store.JoinToken
		Token string `json:"token"`
	}{jt, tok})
}

// maxTokenTTL bounds expires_in; longer is "never", said explicitly.
const maxTokenTTL = 366 * 24 * time.Hour

// tokenTTL reads expires_in: "" is the default (24 h), "never" is 0.
func tokenTTL(v string) (time.Duration, error) {
	switch v {
	case "":
		return store.DefaultJoinTokenTTL, nil
	case "never":
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > maxTokenTTL {
		return 0, errBadRequest(`expires_in must be a positive duration up to 8784h (e.g. "1h", "24h") or "never"`, "expires_in")
	}
	return d, nil
}

func (s *Server) deleteJoinToken(c echo.Context) error {
	if err := s.store.DeleteJoinToken(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	s.noteAdminChange(changefeed.KindJoinToken, c.Param("id"))
	s.log.Info("join token revoked", "token", c.Param("id"), "by", caller(c).Username)
	return message(c, "join token revoked")
}

// deleteCluster is an admin's delete of a cluster (by id or name): its
// credential stops working at once (its sync and watch get 401), its nodes
// and address blocks are freed, and its instances are placed elsewhere.
func (s *Server) deleteCluster(c echo.Context) error {
	cl := clusterByIDOrName(s.state.Snapshot(), c.Param("id"))
	if cl == nil {
		return errNotFound
	}
	n, tk, err := s.state.DeleteCluster(cl.ID)
	if err != nil {
		return err
	}
	if err := s.durable(c, tk); err != nil {
		return err
	}
	s.log.Info("cluster deleted", "cluster", cl.Name, "id", cl.ID, "instances_unassigned", n, "by", caller(c).Username)
	return message(c, fmt.Sprintf("cluster %s deleted; its credential is revoked and %d instances are placed elsewhere", cl.Name, n))
}

// instanceLogs answers the last lines of an instance's output, as its node
// last reported them (logs.go).
func (s *Server) instanceLogs(c echo.Context) error {
	q, err := parseLogQuery(c.QueryParams(), time.Now())
	if err != nil {
		return err
	}
	svc, in, err := s.ownedInstance(c)
	if err != nil {
		return err
	}
	lines := q.pick(wire.ParseLog(in.Logs))
	return c.JSON(http.StatusOK, api.Logs{InstanceNumber: in.Number, Status: restInstance(svc, in).Status,
		Logs: joinText(lines), Lines: restLogLines(lines)})
}

// ownedInstance is the instance named by the path (:id, :n), of a service
// the caller may see.
func (s *Server) ownedInstance(c echo.Context) (*state.Service, *state.Instance, error) {
	n, err := strconv.Atoi(c.Param("n"))
	if err != nil || n < 0 {
		return nil, nil, errBadRequest("instance number "+strconvQuote(c.Param("n"))+" is not a non-negative integer", "n")
	}
	sn := s.state.Snapshot()
	svc, err := ownedService(c, sn, c.Param("id"))
	if err != nil {
		return nil, nil, err
	}
	in := sn.Instance(wire.InstanceKey(svc.ID, n))
	if in == nil {
		return nil, nil, errNotFound
	}
	return svc, in, nil
}

// takeEvents records what a cluster tells of its instances (only of
// those assigned to it, or taken from it while it was lost), saying which
// cluster told it.
func (s *Server) takeEvents(cl *state.Cluster, evs []wire.Event) {
	sn := s.state.Snapshot()
	s.events.Prune(time.Minute, func(key string) bool { return sn.Instance(key) != nil })
	told := map[string]string{} // instance key → owner
	defer func() { s.noteEvents(told) }()
	for _, ev := range evs[:min(len(evs), wire.MaxEvents)] {
		in := sn.Instance(ev.Key)
		if in == nil || in.ClusterID != cl.ID && in.LostFrom != cl.ID {
			continue
		}
		if ev.Source == "cluster" || ev.Source == "" {
			ev.Source = "cluster " + cl.Name
		} else {
			ev.Source += " (cluster " + cl.Name + ")"
		}
		s.events.Add(ev.Bounded())
		told[ev.Key] = in.Owner
	}
}

// instanceEvents answers what happened to an instance, oldest first: as
// its node, its cluster and the root told it (kept in memory, the latest
// events.PerInstance).
func (s *Server) instanceEvents(c echo.Context) error {
	_, in, err := s.ownedInstance(c)
	if err != nil {
		return err
	}
	evs := s.events.Of(in.Key)
	out := api.Events{InstanceNumber: in.Number, Events: make([]api.Event, len(evs))}
	for i, ev := range evs {
		out.Events[i] = api.Event{Time: ev.Time, Source: ev.Source, Message: ev.Message}
	}
	return c.JSON(http.StatusOK, out)
}
