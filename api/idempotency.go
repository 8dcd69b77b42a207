package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"
)

// Idempotency headers. A creating request (POST /api/application/,
// /api/service/, /api/service/{id}/instance, /api/users) that carries an
// Idempotency-Key is done at most once per user and key: the root answers
// a repeat of it (same method, path and body) with the first answer and
// HeaderIdempotentReplayed, a different request under the same key with
// 422, and a repeat while the first is in progress with 409. Successful
// answers are kept for 24 hours.
const (
	HeaderIdempotencyKey     = "Idempotency-Key"
	HeaderIdempotentReplayed = "Idempotent-Replayed"
)

type idempotencyKeyCtx struct{}

// WithIdempotencyKey returns a context whose creating calls send key as
// their Idempotency-Key: to retry a create across calls (or processes)
// without creating twice. Without it, Client makes a fresh key for each
// creating call and reuses it on its own retries.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyCtx{}, key)
}

func idempotencyKey(ctx context.Context) string {
	k, _ := ctx.Value(idempotencyKeyCtx{}).(string)
	return k
}

// NewIdempotencyKey returns a random key.
func NewIdempotencyKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("api: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// creating reports whether method and path create something: the calls
// that carry an Idempotency-Key.
func creating(method, path string) bool {
	if method != http.MethodPost {
		return false
	}
	path, _, _ = strings.Cut(path, "?")
	path = strings.TrimSuffix(path, "/")
	switch path {
	case "/api/application", "/api/service", "/api/users":
		return true
	}
	rest, ok := strings.CutPrefix(path, "/api/service/")
	id, tail, _ := strings.Cut(rest, "/")
	return ok && id != "" && tail == "instance"
}

// idempotentRetries are the waits before the retries of a creating call
// whose answer was lost (the root unreachable): safe, since the key makes
// the root do it at most once.
var idempotentRetries = []time.Duration{200 * time.Millisecond, time.Second}

// sendIdempotent sends a request, and when it carries an Idempotency-Key
// sends it again after the waits of idempotentRetries while the root is
// unreachable.
func (c *Client) sendIdempotent(ctx context.Context, method, path, token string, body []byte) (*Response, error) {
	r, err := c.send(ctx, method, path, token, body)
	if idempotencyKey(ctx) == "" {
		return r, err
	}
	for _, wait := range idempotentRetries {
		var ue *UnreachableError
		if !errors.As(err, &ue) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		r, err = c.send(ctx, method, path, token, body)
	}
	return r, err
}
