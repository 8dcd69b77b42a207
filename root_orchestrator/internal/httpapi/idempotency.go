package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// Idempotency keys: how long a key and its answer are kept.
const (
	idempotencyTTL   = 24 * time.Hour
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
		if other, ok := s.keys.claim(id, fp); !ok {
			if other != fp {
				return errKeyReused
			}
			return &Error{Status: http.StatusConflict, Field: api.HeaderIdempotencyKey,
				Message: "a request with this " + api.HeaderIdempotencyKey + " is in progress; retry later"}
		}
		defer s.keys.release(id)
		ctx := c.Request().Context()
		if s.keys.mayBeKept(id) {
			old, err := s.store.GetIdempotent(ctx, id)
			if err != nil {
				return err
			}
			if old != nil {
				if old.Fingerprint != fp {
					return errKeyReused
				}
				c.Response().Header().Set(api.HeaderIdempotentReplayed, "true")
				return c.Blob(old.Status, old.ContentType, old.Body)
			}
		}

		rec := &recorder{ResponseWriter: c.Response().Writer}
		c.Response().Writer = rec
		d := &deferred{}
		c.Set(deferredKey, d)
		herr := next(c)
		c.Set(deferredKey, nil)
		c.Response().Writer = rec.ResponseWriter
		r := store.IdempotencyRecord{ID: id, Username: user, Fingerprint: fp, ExpiresAt: time.Now().Add(idempotencyTTL)}
		if herr == nil && d.set { // answerDurable: kept with the state change
			return s.keepDeferred(c, r, d)
		}
		status := c.Response().Status
		if herr != nil || status < 200 || status >= 300 {
			return herr // nothing kept: the key may be used again
		}
		// Kept even when the client has gone away.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		ctype, kept := c.Response().Header().Get(echo.HeaderContentType), rec.buf.Bytes()
		if len(kept) > maxKeptAnswer {
			ctype, kept = echo.MIMEApplicationJSON, keptTooLarge
		}
		r.Status, r.ContentType, r.Body = status, ctype, kept
		if err := s.store.KeepIdempotent(sctx, r); err != nil {
			s.log.Warn("keep the answer of an idempotent request", "err", err)
			return nil
		}
		s.keys.keep(id, r.ExpiresAt)
		return nil
	}
}

var errKeyReused = &Error{Status: http.StatusUnprocessableEntity, Field: api.HeaderIdempotencyKey,
	Message: "this " + api.HeaderIdempotencyKey + " was used with another request; use a new key for a new request"}

// idemKeys knows which idempotency keys are in use, so that a new key (the
// common case: api.Client sends a fresh one with every create) costs no
// lookup in the store, only the write of its answer. Every request is
// served by the leading replica (followers forward), which loads the kept
// keys when it starts to lead (LoadIdempotencyKeys). While a request runs
// its key is claimed here, in memory. A root that crashes while a create
// runs loses its claim, as the client loses its answer: a retry runs the
// request again.
type idemKeys struct {
	mu     sync.Mutex
	claims map[string]string    // in progress: id -> fingerprint
	known  map[string]time.Time // answers kept: id -> expiry
	// complete: known holds every kept answer; otherwise (not loaded, or
	// full) a key not in it is looked up in the store.
	complete bool
}

// maxKnownKeys bounds idemKeys.known (about 100 bytes each); beyond it,
// new keys are looked up in the store.
const maxKnownKeys = 1 << 18

// claim takes id for a request with fingerprint fp, or returns the
// fingerprint of the request that holds it.
func (k *idemKeys) claim(id, fp string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if other, held := k.claims[id]; held {
		return other, false
	}
	if k.claims == nil {
		k.claims = map[string]string{}
	}
	k.claims[id] = fp
	return "", true
}

func (k *idemKeys) release(id string) {
	k.mu.Lock()
	delete(k.claims, id)
	k.mu.Unlock()
}

// mayBeKept says whether id may have a kept answer: it has one, or the set
// is not complete.
func (k *idemKeys) mayBeKept(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.known[id]; ok && time.Now().Before(e) {
		return true
	}
	return !k.complete
}

// keep records that id's answer is stored until exp.
func (k *idemKeys) keep(id string, exp time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.known) >= maxKnownKeys {
		k.complete = false
		return
	}
	if k.known == nil {
		k.known = map[string]time.Time{}
	}
	k.known[id] = exp
}

// load replaces the set with the store's (at the start of a leadership).
func (k *idemKeys) load(known map[string]time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.known, k.complete = known, len(known) < maxKnownKeys
}

// expire forgets expired keys; a set that was full may become complete
// again only by a new load.
func (k *idemKeys) expire(now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, e := range k.known {
		if !now.Before(e) {
			delete(k.known, id)
		}
	}
}

// LoadIdempotencyKeys reads which idempotency keys have kept answers: call
// it once this replica leads, before it serves. Until then (or if it
// fails) every key is looked up in the store.
func (s *Server) LoadIdempotencyKeys(ctx context.Context) error {
	recs, err := s.store.IdempotencyKeys(ctx)
	if err != nil {
		return err
	}
	known := make(map[string]time.Time, len(recs))
	for id, r := range recs {
		known[id] = r.ExpiresAt
	}
	s.keys.load(known)
	return nil
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
