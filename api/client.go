package api

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
	"regexp"
	"strings"
	"sync"
	"time"
)

// Config says which root a Client calls and as whom.
type Config struct {
	// Address is the root's base URL, e.g. "http://localhost:10000".
	Address string
	// Session is a login to use; its tokens are refreshed when they
	// expire or the root refuses them.
	Session Session
	// Username and Password, when set, log the client in when it has no
	// session and again when its session can no longer be refreshed.
	Username, Password string
	// HTTPClient makes the requests (a client with a 30 s timeout when nil).
	// Without a Transport of its own it gets the client's default one,
	// which keeps MaxIdleConnsPerHost idle connections to the root.
	HTTPClient *http.Client
	// OnSession is called with every new session (after a login or a
	// refresh), e.g. to save it. An error it returns fails the call.
	OnSession func(Session) error
	// Reload, when set, is called before the client renews its session and
	// returns the session as saved, e.g. by OnSession of another process
	// sharing it. A saved session with another refresh token is taken up
	// instead of refreshing with a token that was already spent (each
	// refresh token works once; the root ends a session whose spent
	// refresh token comes back).
	Reload func() (Session, error)
	// Now is the clock for token expiry (time.Now when nil).
	Now func() time.Time
	// CAFile or CAPEM (PEM certificates), or CAPin ("sha256:<hex>" of the
	// CA's DER certificate), is the CA the root's certificate must be
	// issued by, instead of the system's roots: thicket-root's own CA is in
	// <data-dir>/tls/ca.crt, its pin in its log and in join tokens. A
	// server with another certificate is refused (ErrUntrustedServer).
	CAFile string
	CAPEM  []byte
	CAPin  string
}

// Session is what a login gives: who logged in and their tokens.
type Session struct {
	Username     string `json:"username"`
	Role         string `json:"role"`
	Token        string `json:"token"`
	RefreshToken string `json:"refresh_token"`
	// ExpiresAt is when the access token expires (from the login's
	// expires_in); the zero time means unknown.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// expirySlack refreshes a token a little before it expires, so that it does
// not expire on the way to the server.
const expirySlack = 30 * time.Second

// Expired reports whether the access token should be refreshed before use.
func (s Session) Expired(now time.Time) bool {
	return s.Token == "" || (!s.ExpiresAt.IsZero() && !now.Add(expirySlack).Before(s.ExpiresAt))
}

// MaxIdleConnsPerHost is how many idle connections to the root the
// client's default transport keeps (Go's default transport keeps 2): a
// script making parallel calls reuses its connections instead of paying a
// new TCP and TLS handshake for most calls.
const MaxIdleConnsPerHost = 64

// sharedTransport is the default transport of clients (those given no
// transport of their own): Go's default transport with
// MaxIdleConnsPerHost. Clients with a CA option use a copy of it with
// their TLS configuration (tls.go).
var sharedTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	return t
}()

// Client calls one root's REST API. It is safe for concurrent use.
type Client struct {
	addr      string
	http      *http.Client
	err       error // of the TLS configuration, returned by every call
	now       func() time.Time
	onSession func(Session) error
	reload    func() (Session, error)
	username  string
	password  string
	// fixed: the session's token is sent as it is, even none, and never
	// renewed (WithToken).
	fixed bool

	mu      sync.Mutex
	session Session
	// renewing lets one call at a time renew the session.
	renewing sync.Mutex
}

// NewClient returns a client of the root at cfg.Address.
func NewClient(cfg Config) *Client {
	c := &Client{addr: strings.TrimRight(cfg.Address, "/"), http: cfg.HTTPClient, now: cfg.Now, onSession: cfg.OnSession, reload: cfg.Reload,
		username: cfg.Username, password: cfg.Password, session: cfg.Session}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.http.Transport == nil {
		hc := *c.http
		hc.Transport = sharedTransport
		c.http = &hc
	}
	// A bad CA configuration fails every call (it is no reason to trust
	// the system's roots instead).
	c.http, c.err = clientTLS(cfg, c.http)
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// WithToken returns a client of the same root, over the same HTTP client,
// that sends the access token as it is (none when empty) and never renews
// it: a 401 is a *StatusError like any other answer.
func (c *Client) WithToken(token string) *Client {
	return &Client{addr: c.addr, http: c.http, err: c.err, now: c.now, session: Session{Token: token}, fixed: true}
}

// Address is the root's base URL.
func (c *Client) Address() string { return c.addr }

// Session is the client's current session.
func (c *Client) Session() Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// ErrNotLoggedIn is a call that needs a token from a client that has none
// and no means to get one.
var ErrNotLoggedIn = errors.New("not logged in")

// ErrSessionExpired is a session the root no longer accepts and that could
// not be renewed.
var ErrSessionExpired = errors.New("session expired")

// StatusError is an error answer of the API: its HTTP status with the
// decoded error body (Error), or the text of a body that is no JSON error.
type StatusError struct {
	Status int
	// Message is the body's error, or the body itself when it is short
	// text; empty for an empty or long body.
	Message string
	// Field is the JSON path of the offending input, when the root named one.
	Field string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// Body is the error as the API's error document.
func (e *StatusError) Body() Error { return Error{Error: e.Message, Field: e.Field} }

// HasStatus reports whether err is an error answer with the status.
func HasStatus(err error, status int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == status
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool { return HasStatus(err, http.StatusNotFound) }

// UnreachableError is a request that got no HTTP answer.
type UnreachableError struct {
	Server string
	Err    error
}

func (e *UnreachableError) Error() string {
	if errors.Is(e.Err, ErrUntrustedServer) {
		var ue *url.Error
		err := e.Err
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Sprintf("refused %s: %s", e.Server, strings.TrimPrefix(err.Error(), "tls: "))
	}
	return fmt.Sprintf("cannot reach %s: %s", e.Server, describeNetError(e.Err))
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// describeNetError shortens a transport error to its cause
// ("connect: connection refused" rather than the whole Post "..." chain).
func describeNetError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		if oe.Op == "dial" {
			return "connect: " + strings.TrimPrefix(oe.Err.Error(), "connect: ")
		}
		return oe.Op + ": " + oe.Err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	return err.Error()
}

// Response is an answer as it came, whatever its status.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *Response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// encode turns a request body into bytes: nil is no body, []byte and
// string are sent as they are, anything else as JSON.
func encode(body any) ([]byte, error) {
	switch b := body.(type) {
	case nil:
		return nil, nil
	case []byte:
		return b, nil
	case string:
		return []byte(b), nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode the request: %w", err)
	}
	return b, nil
}

// send makes one request with the token (none when empty).
func (c *Client) send(ctx context.Context, method, path, token string, body []byte) (*Response, error) {
	if c.err != nil {
		return nil, c.err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if k := idempotencyKey(ctx); k != "" {
		req.Header.Set(HeaderIdempotencyKey, k)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &UnreachableError{Server: c.addr, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &UnreachableError{Server: c.addr, Err: err}
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// decode turns an answer into out (when not nil), or into a *StatusError.
func decode(r *Response, out any) error {
	if r.Status != http.StatusOK {
		var e Error
		if json.Unmarshal(r.Body, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(r.Body))
			if len(e.Error) > 200 {
				e.Error = ""
			}
		}
		return &StatusError{Status: r.Status, Message: e.Error, Field: e.Field}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(r.Body, out); err != nil {
		return fmt.Errorf("unexpected answer from the server: %w", err)
	}
	return nil
}

// token returns an access token to send, renewing the session first when
// it has expired.
func (c *Client) token(ctx context.Context) (string, error) {
	c.mu.Lock()
	s := c.session
	c.mu.Unlock()
	if c.fixed || !s.Expired(c.now()) {
		return s.Token, nil
	}
	if s.Token != "" && !c.renewable(s) { // an expired token is still worth a try
		return s.Token, nil
	}
	if err := c.renew(ctx, s); err != nil {
		return "", err
	}
	return c.Session().Token, nil
}

func (c *Client) renewable(s Session) bool {
	return !c.fixed && (s.RefreshToken != "" || c.password != "")
}

// renew refreshes the session s, or logs in again when it has no refresh
// token or the root refuses it. Another call that renewed it meanwhile, in
// this process or (Reload) in another, saves the work.
func (c *Client) renew(ctx context.Context, s Session) error {
	c.renewing.Lock()
	defer c.renewing.Unlock()
	if cur := c.Session(); cur.Token != s.Token && !cur.Expired(c.now()) {
		return nil
	}
	if c.reload != nil {
		saved, err := c.reload()
		if err == nil && saved.RefreshToken != "" && saved.RefreshToken != c.Session().RefreshToken {
			c.mu.Lock()
			c.session = saved
			c.mu.Unlock()
			if saved.Token != s.Token && !saved.Expired(c.now()) {
				return nil
			}
		}
	}
	if c.Session().RefreshToken != "" {
		err := c.Refresh(ctx)
		if !errors.Is(err, ErrSessionExpired) || c.password == "" {
			return err
		}
	}
	if c.password == "" {
		return ErrNotLoggedIn
	}
	_, err := c.Login(ctx, c.username, c.password)
	return err
}

// Do calls the API with the session's access token and decodes a 200
// answer into out (when not nil); any other answer is a *StatusError. The
// session is renewed when it has expired and once more when the root
// answers 401. body is nil, bytes or a string sent as they are, or a value
// sent as JSON. A creating call carries an Idempotency-Key (the context's,
// see WithIdempotencyKey, else a fresh one), which its retries reuse: after
// a 401, and while the root is unreachable.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	b, err := encode(body)
	if err != nil {
		return err
	}
	if creating(method, path) && idempotencyKey(ctx) == "" {
		ctx = WithIdempotencyKey(ctx, NewIdempotencyKey())
	}
	tok, err := c.token(ctx)
	if err != nil {
		return err
	}
	r, err := c.sendIdempotent(ctx, method, path, tok, b)
	if err != nil {
		return err
	}
	if r.Status == http.StatusUnauthorized && c.renewable(c.Session()) {
		if err := c.renew(ctx, Session{Token: tok, RefreshToken: c.Session().RefreshToken}); err != nil {
			return err
		}
		if r, err = c.sendIdempotent(ctx, method, path, c.Session().Token, b); err != nil {
			return err
		}
		if r.Status == http.StatusUnauthorized {
			return ErrSessionExpired
		}
	}
	return decode(r, out)
}

// Raw sends a request with the session's access token, if the client has
// one (renewed first when it has expired and can be), and returns the
// answer whatever its status, for callers that look at status codes and
// bodies themselves. body is as for Do.
func (c *Client) Raw(ctx context.Context, method, path string, body any) (*Response, error) {
	b, err := encode(body)
	if err != nil {
		return nil, err
	}
	tok := c.Session().Token
	if c.renewable(c.Session()) {
		if tok, err = c.token(ctx); err != nil {
			return nil, err
		}
	}
	return c.send(ctx, method, path, tok, b)
}

// Login trades a user name and password for a session, which the client
// uses from then on.
func (c *Client) Login(ctx context.Context, username, password string) (Session, error) {
	b, err := encode(LoginRequest{Username: username, Password: password})
	if err != nil {
		return Session{}, err
	}
	r, err := c.send(ctx, http.MethodPost, "/api/auth/login", "", b)
	if err != nil {
		return Session{}, err
	}
	var tok Tokens
	if err := decode(r, &tok); err != nil {
		return Session{}, err
	}
	s := c.newSession(tok, Session{})
	return s, c.use(s)
}

// Refresh trades the session's refresh token for new tokens.
func (c *Client) Refresh(ctx context.Context) error {
	old := c.Session()
	if old.RefreshToken == "" {
		return ErrNotLoggedIn
	}
	r, err := c.send(ctx, http.MethodPost, "/api/auth/refresh", old.RefreshToken, nil)
	if err != nil {
		return err
	}
	if r.Status == http.StatusUnauthorized {
		return ErrSessionExpired
	}
	var tok Tokens
	if err := decode(r, &tok); err != nil {
		return fmt.Errorf("refresh the session: %w", err)
	}
	return c.use(c.newSession(tok, old))
}

// newSession makes a session of tokens; a root that answers only the
// tokens keeps the user of the old session.
func (c *Client) newSession(tok Tokens, old Session) Session {
	s := Session{Username: tok.Username, Role: tok.Role, Token: tok.Token, RefreshToken: tok.RefreshToken}
	if s.Username == "" {
		s.Username, s.Role = old.Username, old.Role
	}
	if tok.ExpiresIn > 0 {
		s.ExpiresAt = c.now().Add(time.Duration(tok.ExpiresIn) * time.Second).UTC().Truncate(time.Second)
	}
	return s
}

func (c *Client) use(s Session) error {
	c.mu.Lock()
	c.session = s
	c.mu.Unlock()
	if c.onSession != nil {
		return c.onSession(s)
	}
	return nil
}

// fieldErrorStart matches the start of one field error in a validator
// message: a JSON path followed by ": ".
var fieldErrorStart = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*)*: `)

// FieldErrors splits a validator's message ("a.b: x; c[0].d: y") into one
// error per field. Parts that do not start with a field path stay with the
// error before them (a message may itself contain "; ").
func FieldErrors(msg string) []string {
	var out []string
	for _, part := range strings.Split(msg, "; ") {
		if len(out) > 0 && !fieldErrorStart.MatchString(part) {
			out[len(out)-1] += "; " + part
			continue
		}
		out = append(out, part)
	}
	return out
}
