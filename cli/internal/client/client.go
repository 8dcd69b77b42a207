// Package client talks to thicket-root's REST API for the CLI: it signs
// requests with the saved access token, refreshes it when it expires or a
// call answers 401, and turns error answers into errors that say what went
// wrong in one line.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/cli/internal/config"
)

// DefaultServer is the server when neither a flag nor a login names one.
const DefaultServer = "http://localhost:10000"

// NormalizeServer turns "host:port" or "http://host:port/" into a base URL
// without a trailing slash.
func NormalizeServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty server URL")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("server URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("server URL %q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("server URL %q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("server URL %q: no query or fragment expected", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Message string
	// Field is the JSON path of the offending input, when the server named one.
	Field string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// UnreachableError is a request that got no HTTP answer.
type UnreachableError struct {
	Server string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach %s: %s", e.Server, describeNetError(e.Err))
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// describeNetError shortens a transport error to its cause
// ("connect: connection refused" rather than the whole Post "..." chain).
func describeNetError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		if oe.Op == "dial" {
			return "connect: " + strings.TrimPrefix(oe.Err.Error(), "connect: ")
		}
		return oe.Op + ": " + oe.Err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	return err.Error()
}

// ErrNotLoggedIn is a call that needs a token without credentials.
var ErrNotLoggedIn = errors.New("not logged in: run thicket login")

// ErrSessionExpired is a refresh the server refused.
var ErrSessionExpired = errors.New("session expired: run thicket login")

// Client calls one server. Creds may be nil (only Login and Health work
// then); OnRefresh is called with the new credentials after a refresh.
type Client struct {
	Server    string
	HTTP      *http.Client
	Creds     *config.Credentials
	OnRefresh func(*config.Credentials) error
	// Now is the clock for token expiry (time.Now when nil).
	Now func() time.Time
}

// New returns a client of server with a 30 s timeout per request.
func New(server string, creds *config.Credentials, onRefresh func(*config.Credentials) error) *Client {
	return &Client{Server: server, HTTP: &http.Client{Timeout: 30 * time.Second}, Creds: creds, OnRefresh: onRefresh}
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// send makes one request and returns the status and body.
func (c *Client) send(ctx context.Context, method, path, token string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return 0, nil, &UnreachableError{Server: c.Server, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, &UnreachableError{Server: c.Server, Err: err}
	}
	return resp.StatusCode, b, nil
}

// decode turns an answer into out, or into an *APIError.
func decode(status int, b []byte, out any) error {
	if status != http.StatusOK {
		var e api.Error
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
			if e.Error == "" || len(e.Error) > 200 {
				e.Error = ""
			}
		}
		return &APIError{Status: status, Message: e.Error, Field: e.Field}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("unexpected answer from the server: %w", err)
	}
	return nil
}

// call makes an authenticated request, refreshing the access token first
// when it has expired and once more when the server answers 401.
func (c *Client) call(ctx context.Context, method, path string, body []byte, out any) error {
	if c.Creds == nil {
		return ErrNotLoggedIn
	}
	if c.Creds.Expired(c.now()) {
		if err := c.Refresh(ctx); err != nil {
			return err
		}
	}
	status, b, err := c.send(ctx, method, path, c.Creds.Token, body)
	if err != nil {
		return err
	}
	if status == http.StatusUnauthorized {
		if err := c.Refresh(ctx); err != nil {
			return err
		}
		if status, b, err = c.send(ctx, method, path, c.Creds.Token, body); err != nil {
			return err
		}
		if status == http.StatusUnauthorized {
			return ErrSessionExpired
		}
	}
	return decode(status, b, out)
}

// Login trades a user name and password for tokens; the caller saves them.
func (c *Client) Login(ctx context.Context, username, password string) (*config.Credentials, error) {
	body, _ := json.Marshal(api.LoginRequest{Username: username, Password: password})
	status, b, err := c.send(ctx, http.MethodPost, "/api/auth/login", "", body)
	if err != nil {
		return nil, err
	}
	var tok api.Tokens
	if err := decode(status, b, &tok); err != nil {
		return nil, err
	}
	return c.credentials(tok), nil
}

func (c *Client) credentials(tok api.Tokens) *config.Credentials {
	cr := &config.Credentials{Server: c.Server, Username: tok.Username, Role: tok.Role,
		Token: tok.Token, RefreshToken: tok.RefreshToken}
	if tok.ExpiresIn > 0 {
		cr.ExpiresAt = c.now().Add(time.Duration(tok.ExpiresIn) * time.Second).UTC().Truncate(time.Second)
	}
	return cr
}

// Refresh trades the refresh token for new tokens and saves them.
func (c *Client) Refresh(ctx context.Context) error {
	if c.Creds == nil || c.Creds.RefreshToken == "" {
		return ErrNotLoggedIn
	}
	status, b, err := c.send(ctx, http.MethodPost, "/api/auth/refresh", c.Creds.RefreshToken, nil)
	if err != nil {
		return err
	}
	if status == http.StatusUnauthorized {
		return ErrSessionExpired
	}
	var tok api.Tokens
	if err := decode(status, b, &tok); err != nil {
		return fmt.Errorf("refresh the session: %w", err)
	}
	cr := c.credentials(tok)
	if cr.Username == "" { // servers that answer only the tokens
		cr.Username, cr.Role = c.Creds.Username, c.Creds.Role
	}
	c.Creds = cr
	if c.OnRefresh != nil {
		return c.OnRefresh(cr)
	}
	return nil
}

// Health calls /healthz: nil when the server and its store answer.
func (c *Client) Health(ctx context.Context) error {
	status, b, err := c.send(ctx, http.MethodGet, "/healthz", "", nil)
	if err != nil {
		return err
	}
	var h struct {
		Status string `json:"status"`
	}
	if status != http.StatusOK {
		if json.Unmarshal(b, &h) == nil && h.Status != "" {
			return &APIError{Status: status, Message: "server unhealthy: " + h.Status}
		}
		return decode(status, b, nil)
	}
	return nil
}

// Applications lists the caller's applications (an admin's: everyone's).
func (c *Client) Applications(ctx context.Context) ([]api.Application, error) {
	var apps []api.Application
	return apps, c.call(ctx, http.MethodGet, "/api/applications/", nil, &apps)
}

// Application reads one application.
func (c *Client) Application(ctx context.Context, id string) (*api.Application, error) {
	var app api.Application
	if err := c.call(ctx, http.MethodGet, "/api/application/"+url.PathEscape(id), nil, &app); err != nil {
		return nil, err
	}
	return &app, nil
}

// CreateApplications posts a full SLA and returns all of the caller's
// applications, as the API answers.
func (c *Client) CreateApplications(ctx context.Context, sla []byte) ([]api.Application, error) {
	var apps []api.Application
	return apps, c.call(ctx, http.MethodPost, "/api/application/", sla, &apps)
}

// DeleteApplication deletes an application with its services.
func (c *Client) DeleteApplication(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/api/application/"+url.PathEscape(id), nil, nil)
}

// Services lists an application's services.
func (c *Client) Services(ctx context.Context, appID string) ([]api.Service, error) {
	var svcs []api.Service
	return svcs, c.call(ctx, http.MethodGet, "/api/services/"+url.PathEscape(appID), nil, &svcs)
}

// Service reads one service with its instances.
func (c *Client) Service(ctx context.Context, id string) (*api.Service, error) {
	var svc api.Service
	if err := c.call(ctx, http.MethodGet, "/api/service/"+url.PathEscape(id), nil, &svc); err != nil {
		return nil, err
	}
	return &svc, nil
}

// DeleteService deletes a service and its instances.
func (c *Client) DeleteService(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/api/service/"+url.PathEscape(id), nil, nil)
}

// AddInstance requests one more instance and returns its number.
func (c *Client) AddInstance(ctx context.Context, serviceID string) (int, error) {
	var ans struct {
		InstanceNumber int `json:"instance_number"`
	}
	err := c.call(ctx, http.MethodPost, "/api/service/"+url.PathEscape(serviceID)+"/instance", nil, &ans)
	return ans.InstanceNumber, err
}

// DeleteInstance removes instance n of a service.
func (c *Client) DeleteInstance(ctx context.Context, serviceID string, n int) error {
	return c.call(ctx, http.MethodDelete, "/api/service/"+url.PathEscape(serviceID)+"/instance/"+strconv.Itoa(n), nil, nil)
}

// Logs is an instance's output as its node last reported it.
type Logs struct {
	InstanceNumber int    `json:"instance_number"`
	Status         string `json:"status"`
	Logs           string `json:"logs"`
}

// Logs reads the last lines of instance n's output.
func (c *Client) Logs(ctx context.Context, serviceID string, n, lines int) (*Logs, error) {
	var l Logs
	path := fmt.Sprintf("/api/service/%s/instance/%d/logs?lines=%d", url.PathEscape(serviceID), n, lines)
	if err := c.call(ctx, http.MethodGet, path, nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Clusters lists all registered clusters with their nodes.
func (c *Client) Clusters(ctx context.Context) ([]api.Cluster, error) {
	var cls []api.Cluster
	return cls, c.call(ctx, http.MethodGet, "/api/clusters/", nil, &cls)
}

// AllServices lists the services of every application the caller sees.
func (c *Client) AllServices(ctx context.Context, apps []api.Application) ([]api.Service, error) {
	var all []api.Service
	for _, a := range apps {
		svcs, err := c.Services(ctx, a.ApplicationID)
		if IsNotFound(err) { // deleted meanwhile
			continue
		}
		if err != nil {
			return nil, err
		}
		all = append(all, svcs...)
	}
	return all, nil
}

// fieldErrorStart matches the start of one field error in a validator
// message: a JSON path followed by ": ".
var fieldErrorStart = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*)*: `)

// FieldErrors splits a validator's message ("a.b: x; c[0].d: y") into one
// error per field. Parts that do not start with a field path stay with the
// error before them (a message may itself contain "; ").
func FieldErrors(msg string) []string {
	var out []string
	for _, part := range strings.Split(msg, "; ") {
		if len(out) > 0 && !fieldErrorStart.MatchString(part) {
			out[len(out)-1] += "; " + part
			continue
		}
		out = append(out, part)
	}
	return out
}
