package api

import (
	"context"
	"net/http"
)

// AllowFrom is the body of PUT /api/service/{id}/allow-from: the peers
// outside the owner's instances that may connect to the service's
// instances (README: Tenancy); empty: none.
type AllowFrom struct {
	AllowFrom []string `json:"allow_from"`
}

// SetAllowFrom replaces a service's allow_from (nil or empty: only the
// owner's instances may connect) and returns the service. The nodes' rules
// change; no instance restarts.
func (c *Client) SetAllowFrom(ctx context.Context, serviceID string, peers []string) (*Service, error) {
	if peers == nil {
		peers = []string{}
	}
	var out Service
	if err := c.Do(ctx, http.MethodPut, "/api/service/"+esc(serviceID)+"/allow-from", AllowFrom{AllowFrom: peers}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
