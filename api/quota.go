package api

import (
	"context"
	"net/http"
)

// MyQuota reads the caller's quota and its use (GET /api/quota).
func (c *Client) MyQuota(ctx context.Context) (*QuotaStatus, error) {
	return getOne[QuotaStatus](ctx, c, "/api/quota")
}

// Quota reads a user's quota and its use: the caller's, or anyone's for an
// admin.
func (c *Client) Quota(ctx context.Context, username string) (*QuotaStatus, error) {
	return getOne[QuotaStatus](ctx, c, "/api/users/"+esc(username)+"/quota")
}

// SetQuota sets a user's quota (admins only); all zero removes it.
func (c *Client) SetQuota(ctx context.Context, username string, q Quota) (*QuotaStatus, error) {
	var out QuotaStatus
	if err := c.Do(ctx, http.MethodPut, "/api/users/"+esc(username)+"/quota", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
