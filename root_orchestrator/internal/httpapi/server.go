// Package httpapi serves the root's REST API: authentication, users,
// applications, services, instances and clusters, with the reference
// system's paths and wire shapes.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo-contrib/echoprometheus"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/auth"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/events"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/joblist"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/usage"
)

// maxBody bounds every request body.
const maxBody = "4M"

// Server is the HTTP API.
type Server struct {
	state  *state.Store
	store  *store.Store // users, signing key, join tokens
	signer *auth.Signer
	users  *cache[*store.UserRecord]
	// families caches which sessions are active (sessions.go).
	families *cache[bool]
	// passwords limits password checks (guard.go).
	passwords *passwordGuard
	log       *slog.Logger
	ping      func(context.Context) error
	echo      *echo.Echo
	// joinPin is the root CA's pin that join tokens carry (joinpin.go).
	joinPin string

	// The overlay (peers, service table) as of netAt, shared by every
	// cluster's desired set.
	netMu    sync.Mutex
	netAt    uint64
	netPeers []wire.NodeNetwork
	netTable []wire.ServiceRoute

	// events: what happened to each instance, as the tiers told it.
	events *events.Log
	// keys: idempotency keys in use (idempotency.go).
	keys idemKeys
	// jobLists fetches job lists given by URL (jobs.go).
	jobLists *joblist.Reader
	// usage: instances' and nodes' figures over the last hour (usage.go).
	usage *usage.Rings
	// clusterCerts issues clusters' client certificates (clustercert.go).
	clusterCerts *clusterCerts
	// streams: the open live streams (stream.go).
	streams streams
}

// New builds the API over the state, the store and a token signer. ping
// reports whether the store answers, for /healthz.
func New(sta *state.Store, st *store.Store, signer *auth.Signer, ping func(context.Context) error, log *slog.Logger) *Server {
	s := &Server{state: sta, store: st, signer: signer, users: newUserCache(st, 2*time.Second), families: newCache(familyTTL, st.SessionActive), passwords: newPasswordGuard(), log: log, ping: ping,
		echo: echo.New(), events: events.New(0), jobLists: joblist.New(nil), usage: usage.New(0, 0)}
	s.streams.init()
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(log)
	// Both /api/x and /api/x/ are served directly: no redirect, which would
	// turn a client's POST into a GET.
	e.Pre(middleware.RemoveTrailingSlash())
	e.Use(middleware.Recover())
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: maxBody,
		// A cluster's sync is limited after its credential is checked, so
		// that a sync too large still counts as a sign of life (clusters.go).
		Skipper: func(c echo.Context) bool { return c.Path() == "/api/cluster/sync" }}))
	e.Use(echoprometheus.NewMiddlewareWithConfig(echoprometheus.MiddlewareConfig{
		Namespace: "thicket_root",
		Skipper:   func(c echo.Context) bool { return c.Path() == "/metrics" },
	}))
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogMethod: true, LogURI: true, LogStatus: true, LogLatency: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			log.Debug("request", "method", v.Method, "uri", v.URI, "status", v.Status, "latency", v.Latency)
			return nil
		},
	}))
	s.routes()
	return s
}

// ServeMetrics serves h at /metrics: Prometheus' metrics behind the metrics
// token (package metricsauth).
func (s *Server) ServeMetrics(h http.Handler) { s.echo.GET("/metrics", echo.WrapHandler(h)) }

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Mount serves h for GET and HEAD requests under prefix ("/install/", or
// "/" for everything the API does not claim). Paths under /api/ never reach
// h: an unknown API path stays a JSON 404.
func (s *Server) Mount(prefix string, h http.Handler) {
	handler := func(c echo.Context) error {
		if p := c.Request().URL.Path; p == "/api" || strings.HasPrefix(p, "/api/") {
			return echo.ErrNotFound
		}
		h.ServeHTTP(c.Response(), c.Request())
		return nil
	}
	s.echo.GET(prefix+"*", handler)
	s.echo.HEAD(prefix+"*", handler)
}

// Routes lists "METHOD path" of every API route, for the OpenAPI check.
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.echo.Routes() {
		if strings.HasPrefix(r.Path, "/api/") && r.Method != echo.RouteNotFound {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

func (s *Server) routes() {
	e := s.echo
	e.GET("/healthz", s.health)
	e.GET("/api/docs", docsPage)
	e.GET("/api/docs/*", docsAsset)
	e.GET("/api/openapi.json", openAPI)

	e.POST("/api/auth/login", s.login)
	e.POST("/api/auth/refresh", s.refresh)
	e.POST("/api/auth/logout", s.logout)

	a := e.Group("/api", s.authenticate)
	a.GET("/auth/keys", s.listSigningKeys, adminOnly)
	a.POST("/auth/keys/rotate", s.rotateSigningKey, adminOnly)
	a.GET("/users", s.listUsers, adminOnly)
	a.POST("/users", s.createUser, adminOnly, s.idempotent)
	a.GET("/user/:username", s.getUser)
	a.PUT("/user/:username", s.updateUser, adminOnly)
	a.POST("/user/:username", s.changeOwnPassword)
	a.DELETE("/user/:username", s.deleteUser, adminOnly)
	a.GET("/users/:username/quota", s.getQuota)
	a.PUT("/users/:username/quota", s.setQuota, adminOnly)
	a.GET("/quota", s.getOwnQuota)

	a.POST("/application", s.createApplications, s.idempotent)
	a.GET("/applications", s.listApplications)
	a.GET("/applications/:userid", s.listUserApplications)
	a.GET("/application/:id", s.getApplication)
	a.PUT("/application/:id", s.updateApplication)
	a.DELETE("/application/:id", s.deleteApplication)

	a.POST("/service", s.createServices, s.idempotent)
	a.GET("/service/:id", s.getService)
	a.PUT("/service/:id", s.updateService)
	a.DELETE("/service/:id", s.deleteService)
	a.PUT("/service/:id/allow-from", s.setAllowFrom)
	a.GET("/services", s.listAllServices)
	a.GET("/services/:appid", s.listServices)
	a.POST("/service/:id/instance", s.addInstance, s.idempotent)
	a.DELETE("/service/:id/instance/:n", s.deleteInstance)

	a.GET("/service/:id/instance/:n/logs", s.instanceLogs)
	a.GET("/service/:id/instance/:n/usage", s.instanceUsage)
	a.GET("/service/:id/instance/:n/events", s.instanceEvents)
	a.GET("/events/stream", s.eventStream)
	s.jobRoutes(a)

	a.POST("/oam/applications", s.createOAMApplication)
	a.GET("/oam/applications", s.listOAMApplications)
	a.GET("/oam/applications/:name", s.getOAMApplication)
	a.PUT("/oam/applications/:name", s.updateOAMApplication)
	a.GET("/oam/applications/:name/revisions", s.listOAMRevisions)
	a.POST("/oam/applications/:name/rollback", s.rollbackOAMApplication)
	a.DELETE("/oam/applications/:name", s.deleteOAMApplication)
	a.GET("/oam/componentdefinitions", s.listOAMComponentTypes)
	a.POST("/oam/componentdefinitions", s.applyComponentDefinition)
	a.GET("/oam/componentdefinitions/:name", s.getComponentDefinition)
	a.DELETE("/oam/componentdefinitions/:name", s.deleteComponentDefinition)
	a.GET("/oam/traitdefinitions", s.listOAMTraitDefinitions)

	a.GET("/clusters", s.listClusters)
	a.GET("/clusters/active", s.listActiveClusters)
	a.GET("/rtt", s.rtt)
	a.GET("/clusters/:id/nodes/:node/usage", s.nodeUsage)
	a.GET("/clusters/tokens", s.listJoinTokens, adminOnly)
	a.POST("/clusters/tokens", s.createJoinToken, adminOnly)
	a.DELETE("/clusters/tokens/:id", s.deleteJoinToken, adminOnly)
	a.DELETE("/clusters/:id", s.deleteCluster, adminOnly)
	a.DELETE("/clusters/:id/nodes/:node", s.deleteNode, adminOnly)
	a.GET("/clusters/:id/node-tokens", s.listNodeTokens, adminOnly)
	a.POST("/clusters/:id/node-tokens", s.createNodeToken, adminOnly)
	a.DELETE("/clusters/:id/node-tokens/:token", s.deleteNodeToken, adminOnly)
	a.POST("/clusters/:id/nodes/:node/cordon", s.setNodeMode(state.Cordoned), adminOnly)
	a.POST("/clusters/:id/nodes/:node/drain", s.setNodeMode(state.Drained), adminOnly)
	a.POST("/clusters/:id/nodes/:node/uncordon", s.setNodeMode(state.Schedulable), adminOnly)

	// Clusters authenticate with a join token or their own credential.
	e.POST("/api/cluster/register", s.registerCluster)
	e.POST("/api/cluster/sync", s.syncCluster)
	e.GET("/api/cluster/desired", s.watchDesired)
	e.POST("/api/cluster/certificate", s.renewClusterCert)
}

func (s *Server) health(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	if err := s.ping(ctx); err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "store unavailable"})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func message(c echo.Context, msg string) error {
	return c.JSON(http.StatusOK, map[string]string{"message": msg})
}
