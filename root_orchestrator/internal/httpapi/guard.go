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
	Help: "Password checks refused: reason=rate (too many failures from the client's address), busy (every check slot taken).",
}, []string{"reason"})

// passwordGuard keeps password guessing from starving the root. A password
// check is bcrypt, tens of milliseconds of CPU on purpose: a few clients
// sending wrong logins as fast as they can would take every core from the
// clusters' syncs and the API. So:
//   - failed checks are limited per client address (a token bucket: burst
//     failures, then one more every refill); an address over its limit gets
//     429 with Retry-After until its bucket refills, whatever the password;
//   - at most slots checks run at once (half the cores); a check that does
//     not get a slot within wait is refused with 503 and Retry-After.
//
// The client address is the connection's: behind a reverse proxy every
// client has the proxy's address and shares one bucket.
type passwordGuard struct {
	burst  int
	refill time.Duration
	slots  chan struct{}
	wait   time.Duration

	mu      sync.Mutex
	clients map[netip.Addr]*rate.Limiter
	swept   time.Time
}

func newPasswordGuard() *passwordGuard {
	return &passwordGuard{burst: 10, refill: 2 * time.Second, wait: 2 * time.Second,
		slots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)), clients: map[netip.Addr]*rate.Limiter{}}
}

// limiter returns addr's bucket, and forgets full buckets now and then.
// Caller holds mu.
func (g *passwordGuard) limiter(addr netip.Addr, now time.Time) *rate.Limiter {
	if now.Sub(g.swept) > time.Minute {
		g.swept = now
		for a, l := range g.clients {
			if l.TokensAt(now) >= float64(g.burst) {
				delete(g.clients, a)
			}
		}
	}
	l := g.clients[addr]
	if l == nil {
		l = rate.NewLimiter(rate.Every(g.refill), g.burst)
		g.clients[addr] = l
	}
	return l
}

// refusal is the error of a refused check, with its Retry-After.
func refusal(c echo.Context, status int, after time.Duration, msg string) error {
	secs := max(1, int(math.Ceil(after.Seconds())))
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return &Error{Status: status, Message: fmt.Sprintf(msg, secs)}
}

// check compares pw with hash for the client of c, within the limits. It
// answers whether the password matches, or the error to answer instead.
func (g *passwordGuard) check(c echo.Context, hash, pw string) (bool, error) {
	addr := clientAddr(c.Request())
	now := time.Now()
	g.mu.Lock()
	l := g.limiter(addr, now)
	tokens := l.TokensAt(now)
	g.mu.Unlock()
	if tokens < 1 {
		mPasswordRefused.WithLabelValues("rate").Inc()
		return false, refusal(c, http.StatusTooManyRequests, time.Duration((1-tokens)*float64(g.refill)),
			"too many wrong passwords from this address: try again in %d s")
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
	if !ok {
		g.mu.Lock()
		l.AllowN(time.Now(), 1) // a failure takes a token
		g.mu.Unlock()
	}
	return ok, nil
}

// clientAddr is the address of the connection r came on.
func clientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}
