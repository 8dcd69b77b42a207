package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/thicket-edge/thicket/internal/netaddr"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// Lease timing: a leader renews every leaseRenew; a replica takes over at
// most leaseTTL after the leader stopped renewing (at once after a clean
// stop).
const (
	leaseTTL   = 10 * time.Second
	leaseRenew = 2 * time.Second
)

// ReplicaIDFile, in the data dir, names this replica in the leader lease,
// so that a restarted root takes its own lease back at once.
const ReplicaIDFile = "replica-id"

func replicaID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, ReplicaIDFile)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("replica id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return id, nil
}

// advertisedURL is where the other replicas reach this one: the listen
// address, or this host's first IPv4 address when it listens on all.
func advertisedURL(a net.Addr, https bool) string {
	host, port, _ := net.SplitHostPort(a.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if first := netaddr.FirstIPv4(); first != "" {
			host = first
		}
	}
	if https {
		return "https://" + net.JoinHostPort(host, port)
	}
	return "http://" + net.JoinHostPort(host, port)
}

// frontDoor serves the current handler: the API when this replica leads, a
// proxy to the leader otherwise.
type frontDoor struct{ h atomic.Pointer[http.Handler] }

func (f *frontDoor) set(h http.Handler) { f.h.Store(&h) }

func (f *frontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*f.h.Load()).ServeHTTP(w, r) }

func unavailable(msg string) http.Handler {
	body := `{"error":` + strconv.Quote(msg) + `}`
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(body))
	})
}

// forwardTo proxies every request to the leading replica, which must serve
// a certificate of this replica's CA (trust) when it serves HTTPS: replicas
// share one CA (--tls-ca-cert and --tls-ca-key). With replica (a replica's
// client certificate) the client certificate a request came with goes
// along (pki.SetForwarded), for the leader's cluster checks.
func forwardTo(addr string, trust *x509.CertPool, replica func(*tls.CertificateRequestInfo) (*tls.Certificate, error), log *slog.Logger) http.Handler {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return unavailable("no root replica leads yet")
	}
	p := httputil.NewSingleHostReverseProxy(u)
	if u.Scheme == "https" {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: trust, GetClientCertificate: replica}
		p.Transport = t
	}
	direct := p.Director
	p.Director = func(r *http.Request) {
		direct(r)
		if replica != nil {
			pki.SetForwarded(r, r.TLS)
		} else {
			r.Header.Del(pki.ForwardedClientCert)
		}
	}
	p.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		log.Debug("forward to the leading replica", "leader", addr, "err", err)
		unavailable("the leading root replica at "+addr+" does not answer").ServeHTTP(w, r)
	}
	return p
}

// leadership holds this replica's side of the lease.
type leadership struct {
	st     *store.Store
	holder string
	addr   string
	log    *slog.Logger
	front  *frontDoor
	until  time.Time
	// following is called once the front door forwards to a leader.
	following func()
	// alone: no other replica can use this store (the embedded one).
	alone bool
	// trust verifies the leader's certificate (nil: plain HTTP); replica
	// is this replica's client certificate when it forwards (nil: the CA's
	// key is not here, no cluster certificates).
	trust   *x509.CertPool
	replica func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
}

// acquire returns once this replica holds the lease; until then it forwards
// requests to the replica that does.
func (l *leadership) acquire(ctx context.Context) error {
	if l.alone {
		return nil
	}
	following := ""
	for {
		held, cur, err := l.st.AcquireLease(ctx, l.holder, l.addr, leaseTTL)
		if err == nil && held {
			l.until = cur.Until
			return nil
		}
		if err != nil {
			l.log.Warn("leader lease", "err", err)
		} else if cur.Addr != following {
			following = cur.Addr
			l.front.set(forwardTo(cur.Addr, l.trust, l.replica, l.log))
			l.log.Info("another root replica leads; forwarding to it", "leader", cur.Addr, "lease_until", cur.Until)
			l.following()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(leaseRenew):
		}
	}
}

// errLostLease ends a leader that cannot be sure it still leads: another
// replica may be writing.
var errLostLease = errors.New("this root replica lost the leader lease")

// keep renews the lease until ctx ends; it returns errLostLease when
// another replica took it or renewals failed until it ran out.
func (l *leadership) keep(ctx context.Context) error {
	if l.alone {
		<-ctx.Done()
		return ctx.Err()
	}
	t := time.NewTicker(leaseRenew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		held, cur, err := l.st.AcquireLease(ctx, l.holder, l.addr, leaseTTL)
		switch {
		case err == nil && held:
			l.until = cur.Until
		case err == nil:
			return fmt.Errorf("%w: the replica at %s leads now", errLostLease, cur.Addr)
		case time.Until(l.until) < leaseRenew:
			return fmt.Errorf("%w: could not renew it: %w", errLostLease, err)
		default:
			l.log.Warn("renew the leader lease", "err", err)
		}
	}
}
