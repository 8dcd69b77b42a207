package httpapi

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/auth"
	"golang.org/x/time/rate"
)

var mPasswordRefused = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: "thicket_root", Name: "password_checks_refused_total",
	Help: "Password checks refused: reason=rate (too many failures from the client's address), user (too many failures for the user name), busy (every check slot taken).",
}, []string{"reason"})

// passwordGuard keeps password guessing slow and from starving the root. A
// password check is bcrypt, tens of milliseconds of CPU on purpose: a few
// clients sending wrong logins as fast as they can would take every core
// from the clusters' syncs and the API. So:
//   - failed checks are limited per client address and per user name (a
//     token bucket each: burst failures, then one more every refill); over
//     either limit a login gets 429 with Retry-After until the bucket
//     refills, whatever the password. The user name's bucket exists
//     whether or not the user does, so the answers tell nothing about
//     which users exist; a successful check empties the name's failures
//     (not the address's: one's own account must not reset guessing at
//     others');
//   - at most slots checks run at once (half the cores); a check that does
//     not get a slot within wait is refused with 503 and Retry-After.
//
// The client address is the connection's, or, when the connection comes
// from a trusted proxy (SetTrustedProxies), the last address of
// X-Forwarded-For that is not a trusted proxy.
type passwordGuard struct {
	burst      int
	refill     time.Duration
	userBurst  int
	userRefill time.Duration
	slots      chan struct{}
	wait       time.Duration
	trusted    []netip.Prefix

	mu      sync.Mutex
	clients buckets[netip.Addr]
	users   buckets[string]
}

func newPasswordGuard() *passwordGuard {
	return &passwordGuard{burst: 10, refill: 2 * time.Second, userBurst: 20, userRefill: 10 * time.Second, wait: 2 * time.Second,
		slots:   make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
		clients: buckets[netip.Addr]{m: map[netip.Addr]*rate.Limiter{}},
		users:   buckets[string]{m: map[string]*rate.Limiter{}}}
}

// buckets are token buckets by key; full ones are forgotten now and then.
type buckets[K comparable] struct {
	m     map[K]*rate.Limiter
	swept time.Time
}

// get returns k's bucket. Caller holds the guard's mu.
func (b *buckets[K]) get(k K, now time.Time, every time.Duration, burst int) *rate.Limiter {
	if now.Sub(b.swept) > time.Minute {
		b.swept = now
		for a, l := range b.m {
			if l.TokensAt(now) >= float64(burst) {
				delete(b.m, a)
			}
		}
	}
	l := b.m[k]
	if l == nil {
		l = rate.NewLimiter(rate.Every(every), burst)
		b.m[k] = l
	}
	return l
}

// refusal is the error of a refused check, with its Retry-After.
func refusal(c echo.Context, status int, after time.Duration, msg string) error {
	secs := max(1, int(math.Ceil(after.Seconds())))
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return &Error{Status: status, Message: fmt.Sprintf(msg, secs)}
}

// userKey bounds the user names the guard keeps.
func userKey(name string) string {
	if len(name) > 64 {
		return name[:64]
	}
	return name
}

// check compares pw with hash for user and the client of c, within the
// limits. It answers whether the password matches, or the error to answer
// instead.
func (g *passwordGuard) check(c echo.Context, user, hash, pw string) (bool, error) {
	addr := g.clientAddr(c.Request())
	user = userKey(user)
	now := time.Now()
	g.mu.Lock()
	l := g.clients.get(addr, now, g.refill, g.burst)
	ul := g.users.get(user, now, g.userRefill, g.userBurst)
	tokens, utokens := l.TokensAt(now), ul.TokensAt(now)
	g.mu.Unlock()
	if tokens < 1 {
		mPasswordRefused.WithLabelValues("rate").Inc()
		return false, refusal(c, http.StatusTooManyRequests, time.Duration((1-tokens)*float64(g.refill)),
			"too many wrong passwords from this address: try again in %d s")
	}
	if utokens < 1 {
		mPasswordRefused.WithLabelValues("user").Inc()
		return false, refusal(c, http.StatusTooManyRequests, time.Duration((1-utokens)*float64(g.userRefill)),
			"too many wrong passwords for this user name: try again in %d s")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), g.wait)
	defer cancel()
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		mPasswordRefused.WithLabelValues("busy").Inc()
		return false, refusal(c, http.StatusServiceUnavailable, g.wait, "too many password checks at once: try again in %d s")
	}
	ok := auth.CheckPassword(hash, pw)
	<-g.slots
	g.mu.Lock()
	if ok {
		delete(g.users.m, user)
	} else { // a failure takes a token of each
		l.AllowN(time.Now(), 1)
		ul.AllowN(time.Now(), 1)
	}
	g.mu.Unlock()
	return ok, nil
}

// clientAddr is the address of the client r comes from: the connection's,
// unless that is a trusted proxy; then the last address of X-Forwarded-For
// that is no trusted proxy (the ones before it may be made up by the
// client).
func (g *passwordGuard) clientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	a = a.Unmap()
	if !g.trustedProxy(a) {
		return a
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return a // a garbled header: the proxy's address
		}
		if hop = hop.Unmap(); !g.trustedProxy(hop) {
			return hop
		}
		a = hop
	}
	return a
}

func (g *passwordGuard) trustedProxy(a netip.Addr) bool {
	for _, p := range g.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// SetTrustedProxies names the reverse proxies whose X-Forwarded-For header
// tells the client's address to the login rate limits (none by default:
// the header is ignored). Call before serving.
func (s *Server) SetTrustedProxies(p []netip.Prefix) { s.passwords.trusted = p }
