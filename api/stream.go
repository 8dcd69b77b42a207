package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Kinds of Change.
const (
	ChangeApplication = "application"
	ChangeService     = "service"
	ChangeInstance    = "instance"
	ChangeCluster     = "cluster"
	ChangeNode        = "node"
	// ChangeEvent: new events of the instance ID.
	ChangeEvent = "event"
	// ChangeUser: the account ID (a user name) was created, changed (role,
	// password, quota) or deleted. Admins only.
	ChangeUser = "user"
	// ChangeJoinToken: the cluster join token ID (its id, never the secret)
	// was created, used or revoked. Admins only.
	ChangeJoinToken = "join_token"
)

// Change says that an object changed or was deleted: an application,
// service, cluster (by id), instance (by key, "SERVICE.N"), node
// ("CLUSTER/NODE"), an instance's events (by instance key), a user (by
// name) or a cluster join token (by id). ID "*"
// stands for many objects of the kind (usage changes beyond the bound of a
// message).
type Change struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// Usage: only figures that move all the time changed (usage, last
	// seen, log tails).
	Usage bool `json:"usage,omitempty"`
}

// ChangeBatch is one message of GET /api/events/stream: what the caller
// may see that changed since the previous one (at most one per 250 ms).
type ChangeBatch struct {
	// ID is the message's event id ("EPOCH.SEQ"): resume after it.
	ID string `json:"-"`
	// Index is the root's state index of the last change.
	Index uint64 `json:"index"`
	// Reset: changes were missed (the root restarted, the stream resumed
	// too late, or too many changed at once): refresh everything.
	Reset   bool     `json:"reset,omitempty"`
	Changes []Change `json:"changes"`
}

// streamBackoff bounds the wait before Watch reconnects.
const streamBackoff = 10 * time.Second

// Watch follows the root's live stream, calling fn with each batch of
// changes, until ctx ends (it returns nil) or fn fails (its error). It
// reconnects when the stream ends (the access token expired: renewed
// first; the root restarted: after a backoff of up to 10 s) and resumes
// after the last batch it got (a batch with Reset when it cannot). after
// is where to start: "" (from now) or a batch's ID. An answer that
// reconnecting cannot cure (403, 429, a session that cannot be renewed)
// is returned as a *StatusError.
func (c *Client) Watch(ctx context.Context, after string, fn func(ChangeBatch) error) error {
	wait := time.Duration(0)
	for {
		got, err := c.watchOnce(ctx, &after, fn)
		var se *StatusError
		var cb callbackError
		switch {
		case errors.As(err, &cb):
			return cb.err
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &se) && se.Status != http.StatusServiceUnavailable && se.Status != http.StatusBadGateway:
			return err
		case err != nil && !errors.As(err, new(*UnreachableError)) && !errors.Is(err, io.ErrUnexpectedEOF):
			return err
		}
		if got {
			wait = 0 // it worked for a while: reconnect at once
		} else {
			wait = min(max(2*wait, 500*time.Millisecond), streamBackoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// callbackError is an error of Watch's fn.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// watchOnce holds one stream open; got reports whether it delivered
// anything (so that a failure after it is worth retrying at once).
func (c *Client) watchOnce(ctx context.Context, after *string, fn func(ChangeBatch) error) (got bool, err error) {
	if c.err != nil {
		return false, c.err
	}
	tok, err := c.token(ctx)
	if err != nil {
		return false, err
	}
	resp, err := c.openStream(ctx, tok, *after)
	if err != nil {
		return false, err
	}
	if resp.StatusCode == http.StatusUnauthorized && c.renewable(c.Session()) {
		resp.Body.Close()
		if err := c.renew(ctx, Session{Token: tok, RefreshToken: c.Session().RefreshToken}); err != nil {
			return false, err
		}
		if resp, err = c.openStream(ctx, c.Session().Token, *after); err != nil {
			return false, err
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return false, decode(&Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var event, id string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				event = value
			case "id":
				id = value
			case "data":
				data.WriteString(value)
			}
			continue
		}
		got = true
		if event == "change" {
			var b ChangeBatch
			if err := json.Unmarshal([]byte(data.String()), &b); err != nil {
				return got, fmt.Errorf("unexpected stream message from the server: %w", err)
			}
			b.ID = id
			if err := fn(b); err != nil {
				return got, callbackError{err}
			}
			if id != "" {
				*after = id
			}
		}
		event, id = "", ""
		data.Reset()
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return got, &UnreachableError{Server: c.addr, Err: err}
	}
	return got, nil
}

func (c *Client) openStream(ctx context.Context, tok, after string) (*http.Response, error) {
	path := "/api/events/stream"
	if after != "" {
		path += "?after=" + url.QueryEscape(after)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.addr+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	hc := *c.http
	hc.Timeout = 0 // a stream lasts; ctx ends it
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &UnreachableError{Server: c.addr, Err: err}
	}
	return resp, nil
}
