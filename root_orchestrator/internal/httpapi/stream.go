package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/auth"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/changefeed"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// The live stream (GET /api/events/stream): server-sent events saying what
// changed, so that dashboards and `thicket events --follow` refresh when
// something did instead of polling.
const (
	// MaxStreamsPerUser bounds the streams one user holds open (tabs,
	// scripts); one more is refused with 429.
	MaxStreamsPerUser = 8
	// streamEvery: at most one batch of changes per stream per interval.
	streamEvery = 250 * time.Millisecond
	// streamHeartbeat: a comment after this much silence keeps proxies
	// from closing the stream, and checks that the user still exists.
	streamHeartbeat = 20 * time.Second
	// streamWrite bounds one write to a stream: a reader that stops reading
	// is dropped, not waited for.
	streamWrite = 10 * time.Second
)

// streams keeps the open streams per user, so that one user's are bounded,
// a user's or a session's end at once when the user is deleted, changes
// role or password or logs out, and all end at shutdown.
type streams struct {
	mu     sync.Mutex
	open   map[string]map[*openStream]struct{} // by user
	ctx    context.Context
	cancel context.CancelFunc
}

// openStream is one open stream: whose, of which session, and how to end it.
type openStream struct {
	user, family string
	end          context.CancelFunc
}

func (st *streams) init() {
	st.open = map[string]map[*openStream]struct{}{}
	st.ctx, st.cancel = context.WithCancel(context.Background())
}

// take registers a stream of user's session family that end ends; nil
// when the user holds MaxStreamsPerUser already.
func (st *streams) take(user, family string, end context.CancelFunc) *openStream {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.open[user]) >= MaxStreamsPerUser {
		return nil
	}
	o := &openStream{user: user, family: family, end: end}
	if st.open[user] == nil {
		st.open[user] = map[*openStream]struct{}{}
	}
	st.open[user][o] = struct{}{}
	return o
}

func (st *streams) release(o *openStream) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.open[o.user], o)
	if len(st.open[o.user]) == 0 {
		delete(st.open, o.user)
	}
}

// end ends the open streams of user: all of them, or with family set those
// of that session only. It answers how many it ended.
func (st *streams) end(user, family string) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for o := range st.open[user] {
		if family == "" || o.family == family {
			o.end()
			n++
		}
	}
	return n
}

// CloseStreams ends every open stream (the server is shutting down; the
// clients reconnect, to this replica's successor).
func (s *Server) CloseStreams() { s.streams.cancel() }

// resumePoint parses where a reader resumes: "EPOCH.SEQ" (the id of the
// last batch it got, as Last-Event-ID or ?after=) or nothing (from now).
func resumePoint(after, lastID string) (epoch string, seq uint64, err error) {
	v := after
	if v == "" {
		v = lastID
	}
	if v == "" {
		return "", 0, nil
	}
	e, n, ok := strings.Cut(v, ".")
	if ok {
		seq, err = strconv.ParseUint(n, 10, 64)
	}
	if !ok || err != nil || e == "" || len(e) > 64 {
		return "", 0, errBadRequest("after must be the id of a stream event (EPOCH.SEQ), as Last-Event-ID sends it", "after")
	}
	return e, seq, nil
}

// visibleTo says which changes a caller may see: admins everything; users
// their own applications, services, instances and their events, and the
// clusters (whose list they see); not nodes, users (not even their own
// account), join tokens, nor any kind not named here.
func visibleTo(p principal) func(changefeed.Change) bool {
	if p.admin() {
		return nil
	}
	return func(c changefeed.Change) bool {
		switch c.Kind {
		case changefeed.KindCluster:
			return true
		case changefeed.KindApplication, changefeed.KindService, changefeed.KindInstance, changefeed.KindEvent:
			return c.Owner == p.Username
		}
		return false
	}
}

// eventStream serves the live stream (see the README's "Live updates").
func (s *Server) eventStream(c echo.Context) error {
	p := caller(c)
	epoch, after, err := resumePoint(c.QueryParam("after"), c.Request().Header.Get("Last-Event-ID"))
	if err != nil {
		return err
	}
	claims, err := s.signer.Verify(bearer(c), auth.KindAccess)
	if err != nil || claims.ExpiresAt == nil {
		return errUnauthorized
	}
	// The stream ends when the access token expires (the client reconnects
	// with a fresh one), when the client leaves, at shutdown, and at once
	// when the user is deleted, changes role or password, or logs out
	// (s.streams.end; the ping checks the same for changes made through
	// another replica).
	ctx, cancel := context.WithDeadline(c.Request().Context(), claims.ExpiresAt.Time)
	defer cancel()
	open := s.streams.take(p.Username, claims.Family, cancel)
	if open == nil {
		return &Error{Status: http.StatusTooManyRequests, Message: fmt.Sprintf("too many open event streams: at most %d per user; close one (another tab or script) first", MaxStreamsPerUser)}
	}
	defer s.streams.release(open)
	stop := context.AfterFunc(s.streams.ctx, cancel)
	defer stop()

	w := c.Response()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set(echo.HeaderCacheControl, "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer
	w.WriteHeader(http.StatusOK)
	write := func(msg string) error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWrite))
		if _, err := w.Write([]byte(msg)); err != nil {
			return err
		}
		return rc.Flush()
	}
	feed := s.state.Feed()
	seq, index, _ := feed.Current()
	hello, _ := json.Marshal(map[string]any{"epoch": feed.Epoch(), "seq": seq, "index": index,
		"expires_at": claims.ExpiresAt.Time.UTC()})
	if err := write("retry: 3000\nevent: hello\ndata: " + string(hello) + "\n\n"); err != nil {
		return nil
	}
	st := changefeed.Stream{Feed: feed, Epoch: epoch, After: after, Visible: visibleTo(p),
		Every: streamEvery, Heartbeat: streamHeartbeat,
		Send: func(b changefeed.Batch) error {
			data, err := json.Marshal(b)
			if err != nil {
				return err
			}
			return write(fmt.Sprintf("id: %s.%d\nevent: change\ndata: %s\n\n", feed.Epoch(), b.Seq, data))
		},
		Ping: func() error {
			// A deleted user, one whose role changed, or a session that
			// logged out is cut off.
			u, err := s.users.get(ctx, p.Username)
			if errors.Is(err, store.ErrNotFound) || err == nil && (u.Role != p.Role || revoked(claims, u)) {
				return errUnauthorized
			}
			if claims.Family != "" {
				if ok, err := s.families.get(ctx, claims.Family); err == nil && !ok {
					return errUnauthorized
				}
			}
			return write(": ping\n\n")
		}}
	_ = st.Run(ctx)
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) && c.Request().Context().Err() == nil {
		_ = write("event: expired\ndata: {}\n\n")
	}
	return nil
}

// noteEvents tells the streams that instances have new events.
func (s *Server) noteEvents(keys map[string]string) {
	if len(keys) == 0 {
		return
	}
	cs := make([]changefeed.Change, 0, len(keys))
	for key, owner := range keys {
		cs = append(cs, changefeed.Change{Kind: changefeed.KindEvent, ID: key, Owner: owner})
	}
	s.state.Feed().Publish(s.state.Index(), cs...)
}

// noteAdminChange tells the streams that a user account or a cluster join
// token changed (kind changefeed.KindUser or KindJoinToken, id the user's
// name or the token's id: never a secret). Only admins see these.
func (s *Server) noteAdminChange(kind, id string) {
	s.state.Feed().Publish(s.state.Index(), changefeed.Change{Kind: kind, ID: id})
}

// endStreams ends the open streams of user (of its session family only,
// when set): the user was deleted, changed role or password, or logged
// out.
func (s *Server) endStreams(user, family string) {
	if n := s.streams.end(user, family); n > 0 {
		s.log.Debug("ended live streams", "user", user, "streams", n)
	}
}
