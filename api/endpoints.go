package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Answers of the API that are no stored document.

// Message is the answer of calls that change something and return nothing
// else ("Application Deleted").
type Message struct {
	Message string `json:"message"`
}

// Health is the answer of GET /healthz.
type Health struct {
	Status string `json:"status"`
}

// InstanceAdded answers POST /api/service/{id}/instance.
type InstanceAdded struct {
	Message        string   `json:"message"`
	InstanceNumber int      `json:"instance_number"`
	Instance       Instance `json:"instance"`
}

// ServicesCreated answers POST /api/service/: the reference's job_id (the
// last new service's id) and all new services.
type ServicesCreated struct {
	JobID    string    `json:"job_id"`
	Services []Service `json:"services"`
}

// Events is what happened to an instance, oldest first, as its node, its
// cluster and the root told it: the root keeps the latest 50 in memory.
type Events struct {
	InstanceNumber int     `json:"instance_number"`
	Events         []Event `json:"events"`
}

// Event is one thing that happened to an instance. Source says who told
// it: "root", "cluster NAME" or "node NAME (cluster NAME)".
type Event struct {
	Time    time.Time `json:"time"`
	Source  string    `json:"source"`
	Message string    `json:"message"`
}

// Logs is an instance's output as its node last reported it: Logs is the
// text of Lines, one per line.
type Logs struct {
	InstanceNumber int       `json:"instance_number"`
	Status         string    `json:"status"`
	Logs           string    `json:"logs"`
	Lines          []LogLine `json:"lines"`
}

// LogLine is one line of an instance's output.
type LogLine struct {
	// Time is when the node read the line; zero when not known (a
	// unikernel's console, an older node).
	Time time.Time `json:"time,omitzero"`
	// Stream is "stdout", "stderr", or empty when not known.
	Stream string `json:"stream,omitempty"`
	Text   string `json:"text"`
}

// LogQuery selects lines of an instance's output.
type LogQuery struct {
	// Tail is how many of the last lines (the root's default, 100, if 0).
	Tail int
	// Since keeps only the lines written since then: a duration before
	// the root's clock ("10m") or an RFC 3339 time; empty: all.
	Since string
}

// JoinToken is a cluster join token as GET /api/clusters/tokens lists it,
// without its secret.
type JoinToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt: it stops working then; nil: never.
	ExpiresAt *time.Time `json:"expires_at"`
	// SingleUse: it registers one cluster, then is spent.
	SingleUse bool `json:"single_use"`
	// ClusterName: it registers only a cluster of that name, and may
	// replace a registered cluster of that name (an admin's reset).
	ClusterName string     `json:"cluster_name,omitempty"`
	UsedAt      *time.Time `json:"used_at,omitempty"`
	UsedBy      string     `json:"used_by,omitempty"`
	// State is TokenActive, TokenExpired or TokenSpent.
	State string `json:"state"`
}

// States of a join token.
const (
	TokenActive  = "active"
	TokenExpired = "expired"
	TokenSpent   = "spent"
)

// JoinTokenRequest is the body of POST /api/clusters/tokens; all fields
// are optional.
type JoinTokenRequest struct {
	Name string `json:"name,omitempty"`
	// ExpiresIn is a duration ("1h", "72h"; default "24h") or "never".
	ExpiresIn   string `json:"expires_in,omitempty"`
	SingleUse   bool   `json:"single_use,omitempty"`
	ClusterName string `json:"cluster_name,omitempty"`
}

// NewJoinToken answers POST /api/clusters/tokens: the token itself is
// shown only in this answer.
type NewJoinToken struct {
	JoinToken
	Token string `json:"token"`
}

// get is Do for a GET that decodes into a new T.
func get[T any](ctx context.Context, c *Client, path string) (T, error) {
	var v T
	err := c.Do(ctx, http.MethodGet, path, nil, &v)
	return v, err
}

// getOne is get for one document, nil on error.
func getOne[T any](ctx context.Context, c *Client, path string) (*T, error) {
	v, err := get[T](ctx, c, path)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func esc(s string) string { return url.PathEscape(s) }

// Health calls /healthz: nil when the server and its store answer.
func (c *Client) Health(ctx context.Context) error {
	r, err := c.send(ctx, http.MethodGet, "/healthz", "", nil)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		var h Health
		if json.Unmarshal(r.Body, &h) == nil && h.Status != "" {
			return &StatusError{Status: r.Status, Message: "server unhealthy: " + h.Status}
		}
		return decode(r, nil)
	}
	return nil
}

// --- users ---

// Users lists all users (admins only).
func (c *Client) Users(ctx context.Context) ([]User, error) {
	return get[[]User](ctx, c, "/api/users/")
}

// User reads one user: the caller, or anyone for an admin.
func (c *Client) User(ctx context.Context, username string) (*User, error) {
	return getOne[User](ctx, c, "/api/user/"+esc(username))
}

// CreateUser makes a user account (admins only).
func (c *Client) CreateUser(ctx context.Context, u NewUser) (*User, error) {
	var out User
	if err := c.Do(ctx, http.MethodPost, "/api/users/", u, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateUser resets a user's password or changes the role (admins only).
func (c *Client) UpdateUser(ctx context.Context, username string, u UserUpdate) (*User, error) {
	var out User
	if err := c.Do(ctx, http.MethodPut, "/api/user/"+esc(username), u, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ChangePassword changes the caller's own password.
func (c *Client) ChangePassword(ctx context.Context, username string, p PasswordChange) error {
	return c.Do(ctx, http.MethodPost, "/api/user/"+esc(username), p, nil)
}

// DeleteUser removes an account (admins only) and returns the remaining users.
func (c *Client) DeleteUser(ctx context.Context, username string) ([]User, error) {
	var out []User
	return out, c.Do(ctx, http.MethodDelete, "/api/user/"+esc(username), nil, &out)
}

// --- applications ---

// Applications lists the caller's applications (an admin's: everyone's).
func (c *Client) Applications(ctx context.Context) ([]Application, error) {
	return get[[]Application](ctx, c, "/api/applications/")
}

// UserApplications lists the applications of one user.
func (c *Client) UserApplications(ctx context.Context, username string) ([]Application, error) {
	return get[[]Application](ctx, c, "/api/applications/"+esc(username))
}

// Application reads one application.
func (c *Client) Application(ctx context.Context, id string) (*Application, error) {
	return getOne[Application](ctx, c, "/api/application/"+esc(id))
}

// CreateApplications posts a full SLA (bytes sent as they are, or a value
// sent as JSON) and returns all of the caller's applications, as the API
// answers.
func (c *Client) CreateApplications(ctx context.Context, sla any) ([]Application, error) {
	var apps []Application
	return apps, c.Do(ctx, http.MethodPost, "/api/application/", sla, &apps)
}

// CreateApplication posts an SLA and returns the application of that
// name from the answer.
func (c *Client) CreateApplication(ctx context.Context, sla any, name string) (*Application, error) {
	apps, err := c.CreateApplications(ctx, sla)
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		if a.ApplicationName == name {
			return &a, nil
		}
	}
	return nil, fmt.Errorf("application %s not in the answer", name)
}

// UpdateApplication changes an application's name, namespace or description.
func (c *Client) UpdateApplication(ctx context.Context, id string, u ApplicationUpdate) (*Application, error) {
	var out Application
	if err := c.Do(ctx, http.MethodPut, "/api/application/"+esc(id), u, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteApplication deletes an application with its services.
func (c *Client) DeleteApplication(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/application/"+esc(id), nil, nil)
}

// --- services and instances ---

// Services lists an application's services.
func (c *Client) Services(ctx context.Context, appID string) ([]Service, error) {
	return get[[]Service](ctx, c, "/api/services/"+esc(appID))
}

// AllServices lists every service the caller sees, oldest first.
func (c *Client) AllServices(ctx context.Context) ([]Service, error) {
	return get[[]Service](ctx, c, "/api/services/")
}

// Service reads one service with its instances.
func (c *Client) Service(ctx context.Context, id string) (*Service, error) {
	return getOne[Service](ctx, c, "/api/service/"+esc(id))
}

// Instance reads instance n of a service; ok is false when the service
// has no such instance.
func (c *Client) Instance(ctx context.Context, serviceID string, n int) (in Instance, ok bool, err error) {
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

// CreateServices adds the services of an SLA to the existing application
// its applicationID names.
func (c *Client) CreateServices(ctx context.Context, sla any) (*ServicesCreated, error) {
	var out ServicesCreated
	if err := c.Do(ctx, http.MethodPost, "/api/service/", sla, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteService deletes a service and its instances.
func (c *Client) DeleteService(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/service/"+esc(id), nil, nil)
}

// AddInstance requests one more instance and returns its number.
func (c *Client) AddInstance(ctx context.Context, serviceID string) (int, error) {
	var ans InstanceAdded
	err := c.Do(ctx, http.MethodPost, "/api/service/"+esc(serviceID)+"/instance", nil, &ans)
	return ans.InstanceNumber, err
}

// DeleteInstance removes instance n of a service.
func (c *Client) DeleteInstance(ctx context.Context, serviceID string, n int) error {
	return c.Do(ctx, http.MethodDelete, "/api/service/"+esc(serviceID)+"/instance/"+strconv.Itoa(n), nil, nil)
}

// Logs reads the last lines of instance n's output (the root's default,
// 100, when lines is 0).
func (c *Client) Logs(ctx context.Context, serviceID string, n, lines int) (*Logs, error) {
	path := "/api/service/" + esc(serviceID) + "/instance/" + strconv.Itoa(n) + "/logs"
	if lines != 0 {
		path += "?lines=" + strconv.Itoa(lines)
	}
	return getOne[Logs](ctx, c, path)
}

// LogLines reads the lines of instance n's output that q selects.
func (c *Client) LogLines(ctx context.Context, serviceID string, n int, q LogQuery) (*Logs, error) {
	v := url.Values{}
	if q.Tail != 0 {
		v.Set("tail", strconv.Itoa(q.Tail))
	}
	if q.Since != "" {
		v.Set("since", q.Since)
	}
	path := "/api/service/" + esc(serviceID) + "/instance/" + strconv.Itoa(n) + "/logs"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	return getOne[Logs](ctx, c, path)
}

// Events reads what happened to instance n, oldest first (see Events).
func (c *Client) Events(ctx context.Context, serviceID string, n int) (*Events, error) {
	return getOne[Events](ctx, c, "/api/service/"+esc(serviceID)+"/instance/"+strconv.Itoa(n)+"/events")
}

// --- clusters ---

// Clusters lists all registered clusters with their nodes.
func (c *Client) Clusters(ctx context.Context) ([]Cluster, error) {
	return get[[]Cluster](ctx, c, "/api/clusters/")
}

// ActiveClusters lists the clusters that are active.
func (c *Client) ActiveClusters(ctx context.Context) ([]Cluster, error) {
	return get[[]Cluster](ctx, c, "/api/clusters/active")
}

// JoinTokens lists the cluster join tokens (admins only).
func (c *Client) JoinTokens(ctx context.Context) ([]JoinToken, error) {
	return get[[]JoinToken](ctx, c, "/api/clusters/tokens")
}

// CreateJoinToken makes a cluster join token (admins only).
func (c *Client) CreateJoinToken(ctx context.Context, req JoinTokenRequest) (*NewJoinToken, error) {
	var out NewJoinToken
	if err := c.Do(ctx, http.MethodPost, "/api/clusters/tokens", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteJoinToken revokes a join token (admins only).
func (c *Client) DeleteJoinToken(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/clusters/tokens/"+esc(id), nil, nil)
}

// DeleteCluster deletes a cluster by id or name (admins only): its
// credential stops working at once, its address blocks are freed and its
// instances are placed elsewhere.
func (c *Client) DeleteCluster(ctx context.Context, idOrName string) error {
	return c.Do(ctx, http.MethodDelete, "/api/clusters/"+esc(idOrName), nil, nil)
}

// DeleteNode deletes a node of a cluster, both by id or name (admins
// only): its cluster revokes its credential at once and places its
// instances on other nodes.
func (c *Client) DeleteNode(ctx context.Context, cluster, node string) error {
	return c.Do(ctx, http.MethodDelete, "/api/clusters/"+esc(cluster)+"/nodes/"+esc(node), nil, nil)
}

// What an admin may do with a node's placements (SetNodeMode).
const (
	// Cordon: nothing new is placed on the node; its instances stay.
	Cordon = "cordon"
	// Drain: cordon, and its cluster moves its instances to its other
	// nodes, one at a time.
	Drain = "drain"
	// Uncordon: the node takes placements again.
	Uncordon = "uncordon"
)

// SetNodeMode cordons, drains or uncordons a node of a cluster, both by id
// or name (admins only); it returns the root's message.
func (c *Client) SetNodeMode(ctx context.Context, cluster, node, action string) (string, error) {
	var m Message
	err := c.Do(ctx, http.MethodPost, "/api/clusters/"+esc(cluster)+"/nodes/"+esc(node)+"/"+esc(action), nil, &m)
	return m.Message, err
}
