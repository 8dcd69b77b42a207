package api

import (
	"context"
	"net/url"
)

// RTT estimates the round trip between two nodes or clusters from their
// network coordinates. Each end is "node:<name>", "node:<cluster>/<name>"
// or "cluster:<name>".
func (c *Client) RTT(ctx context.Context, from, to string) (*RTT, error) {
	q := url.Values{"from": {from}, "to": {to}}
	r, err := get[RTT](ctx, c, "/api/rtt?"+q.Encode())
	if err != nil {
		return nil, err
	}
	return &r, nil
}
