package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// A creating handler whose request carries an Idempotency-Key answers
// through answerDurable: instead of waiting for its state change to be
// stored and then (in idempotent) for its answer to be kept, which is two
// waits for the store in a row, it hands the answer to idempotent, which
// queues it behind the change (state.WriteAfter) and waits once for both.
// A 2xx still means stored: the change, and the answer a retry replays.

// deferredKey holds a request's *deferred while idempotent serves it.
const deferredKey = "thicket.deferred"

// deferred is an answer waiting for its state change, and for itself, to
// be stored.
type deferred struct {
	set    bool
	ticket state.Ticket
	status int
	body   []byte // JSON, as c.JSON writes it
	after  func() // run once both are stored, before the answer is sent
}

// answerDurable answers with status and the JSON of v once the write of
// ticket tk is stored, and runs after (when not nil) just before. Under
// idempotent, the wait is idempotent's.
func (s *Server) answerDurable(c echo.Context, tk state.Ticket, status int, v any, after func()) error {
	d, ok := c.Get(deferredKey).(*deferred)
	if !ok {
		if err := s.durable(c, tk); err != nil {
			return err
		}
		if after != nil {
			after()
		}
		return c.JSON(status, v)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	if _, pretty := c.QueryParams()["pretty"]; pretty {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return err
	}
	*d = deferred{set: true, ticket: tk, status: status, body: b.Bytes(), after: after}
	return nil
}

// keepDeferred keeps the deferred answer d of the request under rec's key
// behind its state change, waits until both are stored, and sends it. The
// wait outlasts a client that has gone away (as keeping an answer always
// did): until it ends the key stays claimed, so that a retry meanwhile gets
// 409, not a second run.
func (s *Server) keepDeferred(c echo.Context, rec store.IdempotencyRecord, d *deferred) error {
	rec.Status, rec.ContentType, rec.Body = d.status, echo.MIMEApplicationJSON, d.body
	if len(rec.Body) > maxKeptAnswer {
		rec.ContentType, rec.Body = echo.MIMEApplicationJSON, keptTooLarge
	}
	kept := s.store.Kept(rec)
	tk := s.state.WriteAfter(state.KindAnswer, kept.ID, &kept)
	// Known from now on: should the wait fail (503), the answer is still
	// written, and a retry looks it up instead of running again.
	s.keys.keep(kept.ID, kept.ExpiresAt)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), 30*time.Second)
	defer cancel()
	if err := s.state.Durable(ctx, tk); err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Message: err.Error()}
	}
	if d.after != nil {
		d.after()
	}
	return c.Blob(d.status, echo.MIMEApplicationJSON, d.body)
}
