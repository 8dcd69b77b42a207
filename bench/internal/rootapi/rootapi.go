// Package rootapi is the benchmarks' client of thicket-root's REST API:
// api.Client, tuned for many parallel calls, with the few helpers the
// measurements share.
package rootapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// Client calls one root. Safe for concurrent use after Login.
type Client struct {
	*api.Client
	URL string
}

// New returns a client of the root at url, trusting the CA in caFile (the
// root's <data-dir>/tls/ca.crt; "" for a root serving plain HTTP).
// Its connections are the API client's default transport's
// (api.MaxIdleConnsPerHost idle ones kept), as every user's are.
func New(url, caFile string) *Client {
	url = strings.TrimRight(url, "/")
	return &Client{URL: url, Client: api.NewClient(api.Config{Address: url, CAFile: caFile,
		HTTPClient: &http.Client{Timeout: 60 * time.Second}})}
}

// Healthy reports whether /healthz answers 200.
func (c *Client) Healthy(ctx context.Context) bool { return c.Health(ctx) == nil }

// Login gets an access token; its lifetime (15 min by default) outlasts
// every measurement, which logs in again before each.
func (c *Client) Login(ctx context.Context, user, password string) error {
	_, err := c.Client.Login(ctx, user, password)
	return err
}

// ServiceSpec is one microservice of an application to create; zero
// fields take the SLA's defaults.
type ServiceSpec struct {
	Name        string
	Image       string
	MemoryMB    int
	Environment []string
	Cmd         []string
	// Cluster and Node, when set, pin the service there (a direct
	// constraint).
	Cluster, Node string
}

// CreateApp posts an SLA with one application and returns its id and the
// ids of its services by name.
func (c *Client) CreateApp(ctx context.Context, name string, services []ServiceSpec) (string, map[string]string, error) {
	ms := make([]map[string]any, len(services))
	for i, s := range services {
		m := map[string]any{
			"microservice_name": s.Name, "microservice_namespace": "bench", "virtualization": "container",
			"code": s.Image, "memory": s.MemoryMB, "vcpus": 0,
		}
		if len(s.Environment) > 0 {
			m["environment"] = s.Environment
		}
		if len(s.Cmd) > 0 {
			m["cmd"] = s.Cmd
		}
		if s.Node != "" {
			m["constraints"] = []any{map[string]any{"type": "direct", "cluster": s.Cluster, "node": s.Node}}
		}
		ms[i] = m
	}
	sla := map[string]any{"sla_version": "v2.0", "customerID": "Admin", "applications": []any{map[string]any{
		"application_name": name, "application_namespace": "bench", "application_desc": "thicket-bench", "microservices": ms,
	}}}
	app, err := c.CreateApplication(ctx, sla, name)
	if err != nil {
		return "", nil, fmt.Errorf("create application %s: %w", name, err)
	}
	svcs, err := c.Services(ctx, app.ApplicationID)
	if err != nil {
		return "", nil, err
	}
	ids := make(map[string]string, len(svcs))
	for _, s := range svcs {
		ids[s.MicroserviceName] = s.MicroserviceID
	}
	return app.ApplicationID, ids, nil
}

// ActiveNodes is the number of active nodes of each active cluster, by name.
func (c *Client) ActiveNodes(ctx context.Context) (map[string]int, error) {
	cls, err := c.ActiveClusters(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(cls))
	for _, cl := range cls {
		out[cl.ClusterName] = cl.ActiveNodes
	}
	return out, nil
}

// Running reports whether an instance is RUNNING.
func Running(in api.Instance) bool { return in.Status == wire.StatusRunning }
