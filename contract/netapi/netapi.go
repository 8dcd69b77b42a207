// Package netapi is the local API between the node engine and the net
// manager (thicket-net): HTTP over a unix socket, readable and writable by
// root only. The node engine hands down the node's subnet, peers and service
// table, and asks for an instance's network before starting it.
package netapi

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
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// DefaultSocket is where thicket-net listens by default.
const DefaultSocket = "/run/thicket/net.sock"

// Config is the body of PUT /v1/network: who this node is, its subnet and
// the overlay around it.
type Config struct {
	NodeID    string       `json:"node_id"`
	ClusterID string       `json:"cluster_id"`
	Subnet    string       `json:"subnet"`
	Network   wire.Network `json:"network"`
	// RTTMS are this node's estimated round trips, in whole milliseconds
	// (coarsened so that jitter does not rewrite the service table), to the
	// nodes behind its closest routes, by node id: a closest route prefers
	// the backends of the nearest node (see RouteClosest). Added later: an
	// absent map means same node, else same cluster, else any.
	RTTMS map[string]int `json:"rtt_ms,omitempty"`
}

// Status answers GET /v1/status. Ready means the node's overlay is set up
// (it has a subnet); Node is then what peers need.
type Status struct {
	Ready bool             `json:"ready"`
	Node  wire.NodeNetwork `json:"node"`
	// Refused lists the peers and service backends the net manager left
	// out of the datapath, and why (outside the instance network,
	// overlapping this node's or another peer's subnet, malformed); the
	// rest is applied.
	Refused []string `json:"refused,omitempty"`
}

// AttachRequest is the body of PUT /v1/instances/{key}.
type AttachRequest struct {
	// Ports are the instance's ports to publish on the node's address.
	// (Node engines of earlier versions sent the SLA's port field as
	// "ports"; the net manager still takes it.)
	Ports []wire.PortMapping `json:"port_mappings,omitempty"`
}

// Attachment is an instance's network.
type Attachment struct {
	Key   string `json:"key"`
	IP    string `json:"ip"`
	Netns string `json:"netns"`
	// Ports are the published ports.
	Ports []wire.PortMapping `json:"port_mappings,omitempty"`
}

// ErrNotReady: the node has no subnet yet, so instances cannot get an
// address; try again later.
var ErrNotReady = errors.New("the node's network is not ready")

// Error is an error answer.
type Error struct {
	Error string `json:"error"`
}

// Client talks to thicket-net.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client of the net manager at socket.
func NewClient(socket string) *Client {
	return &Client{socket: socket, http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}}
}

// Status asks for the node's overlay status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Configure hands down the node's subnet, peers and service table.
func (c *Client) Configure(ctx context.Context, cfg Config) error {
	return c.do(ctx, http.MethodPut, "/v1/network", cfg, nil)
}

// Attach gives an instance its network (idempotent: the same key keeps its
// address).
func (c *Client) Attach(ctx context.Context, key string, req AttachRequest) (Attachment, error) {
	var a Attachment
	return a, c.do(ctx, http.MethodPut, "/v1/instances/"+url.PathEscape(key), req, &a)
}

// Detach removes an instance's network.
func (c *Client) Detach(ctx context.Context, key string) error {
	return c.do(ctx, http.MethodDelete, "/v1/instances/"+url.PathEscape(key), nil, nil)
}

// Attachments lists the instances' networks.
func (c *Client) Attachments(ctx context.Context) ([]Attachment, error) {
	var as []Attachment
	return as, c.do(ctx, http.MethodGet, "/v1/instances", nil, &as)
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://thicket-net"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("net manager at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if resp.StatusCode == http.StatusServiceUnavailable {
		return fmt.Errorf("net manager: %s %s: %w", method, path, ErrNotReady)
	}
	if resp.StatusCode != http.StatusOK {
		var e Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("net manager: %s %s: %s", method, path, e.Error)
		}
		return fmt.Errorf("net manager: %s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("net manager: %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}
