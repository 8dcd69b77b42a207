package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// Idempotency keys: how long a key and its answer are kept, and after how
// long a request that claimed one and never finished (a root that
// crashed) gives it up.
const (
	idempotencyTTL   = 24 * time.Hour
	idempotencyStale = 2 * time.Minute
	maxIdempotentKey = 255
	// maxKeptAnswer bounds an answer kept for replay (a MongoDB document
	// holds 16 MB); a larger one is replayed as keptTooLarge.
	maxKeptAnswer = 4 << 20
)

// keptTooLarge replays a successful answer too large to keep.
var keptTooLarge = []byte(`{"message":"done (replayed: the first answer was too large to keep; read the result with GET)"}` + "\n")

// idempotent makes a creating endpoint safe to retry: a request with an
// Idempotency-Key header that the same user sent before with the same
// method, path and body gets the first one's answer again (with
// Idempotent-Replayed: true) and creates nothing; the same key with
// another request is 422; while the first is in progress, 409. Only
// successful answers are kept (24 h): after a failure the key may be
// used again. Requests without the header are not affected.
func (s *Server) idempotent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Request().Header.Get(api.HeaderIdempotencyKey)
		if key == "" {
			return next(c)
		}
		if len(key) > maxIdempotentKey || !printable(key) {
			return errBadRequest(api.HeaderIdempotencyKey+" must be 1 to 255 printable ASCII characters", api.HeaderIdempotencyKey)
		}
		body, err := io.ReadAll(c.Request().Body)
		if tooLarge(err) {
			return errTooLarge
		} else if err != nil {
			return errBadRequest("read body: "+err.Error(), "")
		}
		c.Request().Body = io.NopCloser(bytes.NewReader(body))

		user := caller(c).Username
		id := digest(user, key)
		fp := digest(c.Request().Method, c.Request().URL.Path, string(body))
		ctx := c.Request().Context()
		old, err := s.store.BeginIdempotent(ctx, store.IdempotencyRecord{ID: id, Username: user, Fingerprint: fp,
			ExpiresAt: time.Now().Add(idempotencyTTL)}, idempotencyStale)
		if err != nil {
			return err
		}
		if old != nil {
			switch {
			case old.Fingerprint != fp:
				return &Error{Status: http.StatusUnprocessableEntity, Field: api.HeaderIdempotencyKey,
					Message: "this " + api.HeaderIdempotencyKey + " was used with another request; use a new key for a new request"}
			case !old.Done:
				return &Error{Status: http.StatusConflict, Field: api.HeaderIdempotencyKey,
					Message: "a request with this " + api.HeaderIdempotencyKey + " is in progress; retry later"}
			}
			c.Response().Header().Set(api.HeaderIdempotentReplayed, "true")
			return c.Blob(old.Status, old.ContentType, old.Body)
		}

		rec := &recorder{ResponseWriter: c.Response().Writer}
		c.Response().Writer = rec
		herr := next(c)
		c.Response().Writer = rec.ResponseWriter
		// Kept or released even when the client has gone away.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		status := c.Response().Status
		if herr == nil && status >= 200 && status < 300 {
			ctype, kept := c.Response().Header().Get(echo.HeaderContentType), rec.buf.Bytes()
			if len(kept) > maxKeptAnswer {
				ctype, kept = echo.MIMEApplicationJSON, keptTooLarge
			}
			if err := s.store.FinishIdempotent(sctx, id, status, ctype, kept); err != nil {
				s.log.Warn("keep the answer of an idempotent request", "err", err)
			}
			return nil
		}
		if err := s.store.AbortIdempotent(sctx, id); err != nil {
			s.log.Warn("release an idempotency key", "err", err)
		}
		return herr
	}
}

// recorder copies what a handler writes.
type recorder struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.buf.Write(b)
	return r.ResponseWriter.Write(b)
}

// digest is the hex SHA-256 of the parts, each length-prefixed.
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		for i, l := 0, uint64(len(p)); i < 8; i++ {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		io.WriteString(h, p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
