package api

import (
	"context"
	"net/http"
	"time"
)

// NodeToken is a node join token the root issued for a cluster, as
// GET /api/clusters/{cluster}/node-tokens lists it, without its secret.
type NodeToken struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt: it admits no node from then on; nil: never.
	ExpiresAt *time.Time `json:"expires_at"`
	// SingleUse: it admits one node, then is spent.
	SingleUse bool `json:"single_use"`
	// NodeName: it admits only a node of that name.
	NodeName string `json:"node_name,omitempty"`
	// UsedAt and UsedBy: the cluster told the root that the single-use
	// token was used (a cluster refuses a second use before it tells).
	UsedAt *time.Time `json:"used_at,omitempty"`
	UsedBy string     `json:"used_by,omitempty"`
	// State is TokenActive, TokenExpired or TokenSpent.
	State string `json:"state"`
}

// NodeTokenRequest is the body of POST /api/clusters/{cluster}/node-tokens;
// all fields are optional.
type NodeTokenRequest struct {
	// ExpiresIn is a duration ("1h", "72h"; default "24h") or "never".
	ExpiresIn string `json:"expires_in,omitempty"`
	SingleUse bool   `json:"single_use,omitempty"`
	NodeName  string `json:"node_name,omitempty"`
}

// NewNodeToken answers POST /api/clusters/{cluster}/node-tokens: the
// token itself is shown only in this answer. It carries the pin of the
// cluster's CA (thk1<pin>::<secret>) when the cluster told the root its
// pin (Pinned); ClusterURL is where nodes reach the cluster's node API, as
// the cluster registered it.
type NewNodeToken struct {
	NodeToken
	Token      string `json:"token"`
	Pinned     bool   `json:"pinned"`
	Cluster    string `json:"cluster"`
	ClusterURL string `json:"cluster_url"`
}

// NodeTokens lists a cluster's node join tokens (admins only); cluster is
// its id or name.
func (c *Client) NodeTokens(ctx context.Context, cluster string) ([]NodeToken, error) {
	return get[[]NodeToken](ctx, c, "/api/clusters/"+esc(cluster)+"/node-tokens")
}

// CreateNodeToken issues a node join token for a cluster (admins only).
func (c *Client) CreateNodeToken(ctx context.Context, cluster string, req NodeTokenRequest) (*NewNodeToken, error) {
	var out NewNodeToken
	if err := c.Do(ctx, http.MethodPost, "/api/clusters/"+esc(cluster)+"/node-tokens", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteNodeToken revokes a cluster's node join token (admins only): the
// cluster admits no node by it within seconds. Nodes that joined with it
// keep their own credentials.
func (c *Client) DeleteNodeToken(ctx context.Context, cluster, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/clusters/"+esc(cluster)+"/node-tokens/"+esc(id), nil, nil)
}
