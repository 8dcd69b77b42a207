// Package rootapi is a small client of thicket-root's REST API, as a user
// or script would call it.
package rootapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// Client calls one root. Safe for concurrent use after Login.
type Client struct {
	URL   string
	token string
	http  *http.Client
}

// New returns a client of the root at url.
func New(url string) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Client{URL: strings.TrimRight(url, "/"), http: &http.Client{Timeout: 60 * time.Second, Transport: tr}}
}

// StatusError is a non-200 answer.
type StatusError struct {
	Method, Path string
	Code         int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Code, strings.TrimSpace(e.Body))
}

// Do calls the API and decodes a 200 answer into out (when not nil).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, rd)
	if err != nil {
		return err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &StatusError{method, path, resp.StatusCode, string(data)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// Healthy reports whether /healthz answers 200.
func (c *Client) Healthy(ctx context.Context) bool {
	return c.Do(ctx, http.MethodGet, "/healthz", nil, nil) == nil
}

// Login gets an access token; its lifetime (15 min by default) outlasts
// every measurement, which logs in again before each.
func (c *Client) Login(ctx context.Context, user, password string) error {
	var tok api.Tokens
	c.token = ""
	if err := c.Do(ctx, http.MethodPost, "/api/auth/login", api.LoginRequest{Username: user, Password: password}, &tok); err != nil {
		return err
	}
	c.token = tok.Token
	return nil
}

// ServiceSpec is one microservice of an application to create; zero
// fields take the SLA's defaults.
type ServiceSpec struct {
	Name        string
	Image       string
	MemoryMB    int
	Environment []string
	Cmd         []string
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
		ms[i] = m
	}
	sla := map[string]any{"sla_version": "v2.0", "customerID": "Admin", "applications": []any{map[string]any{
		"application_name": name, "application_namespace": "bench", "application_desc": "thicket-bench", "microservices": ms,
	}}}
	var apps []api.Application
	if err := c.Do(ctx, http.MethodPost, "/api/application/", sla, &apps); err != nil {
		return "", nil, err
	}
	for _, a := range apps {
		if a.ApplicationName != name {
			continue
		}
		svcs, err := c.Services(ctx, a.ApplicationID)
		if err != nil {
			return "", nil, err
		}
		ids := make(map[string]string, len(svcs))
		for _, s := range svcs {
			ids[s.MicroserviceName] = s.MicroserviceID
		}
		return a.ApplicationID, ids, nil
	}
	return "", nil, fmt.Errorf("application %s not in the answer", name)
}

// DeleteApp deletes an application with its services.
func (c *Client) DeleteApp(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/application/"+id, nil, nil)
}

// AddInstance requests one more instance of a service and returns its number.
func (c *Client) AddInstance(ctx context.Context, serviceID string) (int, error) {
	var ans struct {
		InstanceNumber int `json:"instance_number"`
	}
	err := c.Do(ctx, http.MethodPost, "/api/service/"+serviceID+"/instance", nil, &ans)
	return ans.InstanceNumber, err
}

// DeleteInstance removes instance n of a service.
func (c *Client) DeleteInstance(ctx context.Context, serviceID string, n int) error {
	return c.Do(ctx, http.MethodDelete, fmt.Sprintf("/api/service/%s/instance/%d", serviceID, n), nil, nil)
}

// Service reads one service with its instances.
func (c *Client) Service(ctx context.Context, id string) (api.Service, error) {
	var s api.Service
	err := c.Do(ctx, http.MethodGet, "/api/service/"+id, nil, &s)
	return s, err
}

// Instance reads instance n of a service; ok is false when it is absent.
func (c *Client) Instance(ctx context.Context, serviceID string, n int) (in api.Instance, ok bool, err error) {
	s, err := c.Service(ctx, serviceID)
	if err != nil {
		return in, false, err
	}
	for _, in := range s.InstanceList {
		if in.InstanceNumber == n {
			return in, true, nil
		}
	}
	return in, false, nil
}

// Services reads an application's services with their instances.
func (c *Client) Services(ctx context.Context, appID string) ([]api.Service, error) {
	var s []api.Service
	err := c.Do(ctx, http.MethodGet, "/api/services/"+appID, nil, &s)
	return s, err
}

// ActiveNodes is the number of active nodes of each active cluster, by name.
func (c *Client) ActiveNodes(ctx context.Context) (map[string]int, error) {
	var cls []api.Cluster
	if err := c.Do(ctx, http.MethodGet, "/api/clusters/active", nil, &cls); err != nil {
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
