// Package jobsapi is the job endpoint an instance with a job grant reaches
// on its gateway: GET /v1/jobs answers the instance's own jobs, found by
// the connection's source address, and can be long-polled (?after=N
// answers once the assignment version is above N, else waits up to ?wait
// seconds, 30 by default, and answers what holds then).
//
// Who asks is the source address alone: an instance's address is its own
// (containers run without CAP_NET_ADMIN and CAP_NET_RAW, so they can
// neither change it nor forge packets), and an address that is no
// instance's with a job grant gets 404. The node engine serves it on the
// bridge address of the overlay, which is each instance's default
// gateway; instances that share the node's network have no address of
// their own and only have the job file and the environment.
package jobsapi

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Document is an instance's jobs: the body of GET /v1/jobs and the
// content of its job file.
type Document struct {
	// Version of the grant the jobs come from.
	Version int64 `json:"version"`
	// Jobs the instance owns now, sorted; empty: none.
	Jobs []string `json:"jobs"`
	// LeaseExpired: the node has not reached its cluster for longer than
	// the lease and took the jobs away; they come back when it does.
	LeaseExpired bool `json:"lease_expired,omitempty"`
}

// Source knows the instances' jobs.
type Source interface {
	// Jobs is the document of the instance at addr and a channel that is
	// closed when it (or any other instance's) changes; ok is false when
	// no instance with a job grant has that address.
	Jobs(addr netip.Addr) (doc Document, changed <-chan struct{}, ok bool)
}

// Path is the endpoint's path.
const Path = "/v1/jobs"

const (
	// DefaultWait is how long a long poll waits without ?wait; MaxWait
	// bounds ?wait.
	DefaultWait = 30 * time.Second
	MaxWait     = 120 * time.Second
	// expiredPace: while the jobs are taken away (LeaseExpired) a long
	// poll answers after at most this, whatever the version, so that a
	// client learns of it at once and a client that knows does not spin.
	expiredPace = time.Second
	// maxPerSource bounds the requests one address has open at once.
	maxPerSource = 8
)

// Handler serves Path from src.
type Handler struct {
	src Source

	mu   sync.Mutex
	open map[netip.Addr]int
}

// New returns the handler.
func New(src Source) *Handler {
	return &Handler{src: src, open: map[netip.Addr]int{}}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Path {
		writeError(w, http.StatusNotFound, "not found: the job endpoint is GET "+Path+"?after=VERSION")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "only GET")
		return
	}
	addr, err := sourceAddr(r.RemoteAddr)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := r.URL.Query()
	after := int64(-1)
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			writeError(w, http.StatusBadRequest, "after: want the last version seen, a number ≥ 0")
			return
		}
	}
	wait := DefaultWait
	if s := q.Get("wait"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || time.Duration(n)*time.Second > MaxWait {
			writeError(w, http.StatusBadRequest, "wait: want seconds from 0 to "+strconv.Itoa(int(MaxWait/time.Second)))
			return
		}
		wait = time.Duration(n) * time.Second
	}
	if !h.enter(addr) {
		writeError(w, http.StatusTooManyRequests, "too many open requests from "+addr.String())
		return
	}
	defer h.leave(addr)

	doc, changed, ok := h.src.Jobs(addr)
	if !ok {
		writeError(w, http.StatusNotFound, "no instance with jobs has the address "+addr.String())
		return
	}
	if after >= 0 && doc.Version <= after {
		timeout := wait
		if doc.LeaseExpired {
			timeout = min(timeout, expiredPace)
		}
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		expired := doc.LeaseExpired
	wait:
		for doc.Version <= after && doc.LeaseExpired == expired {
			select {
			case <-r.Context().Done():
				return
			case <-timer.C:
				break wait
			case <-changed:
			}
			if doc, changed, ok = h.src.Jobs(addr); !ok {
				writeError(w, http.StatusNotFound, "the instance at "+addr.String()+" has no jobs any more")
				return
			}
		}
	}
	if doc.Jobs == nil {
		doc.Jobs = []string{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(doc)
}

func (h *Handler) enter(a netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open[a] >= maxPerSource {
		return false
	}
	h.open[a]++
	return true
}

func (h *Handler) leave(a netip.Addr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open[a]--; h.open[a] <= 0 {
		delete(h.open, a)
	}
}

func sourceAddr(remote string) (netip.Addr, error) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, err
	}
	return a.Unmap(), nil
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// Server returns an HTTP server of h with timeouts fit for long polls.
func Server(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      MaxWait + 10*time.Second,
		IdleTimeout:       MaxWait + 10*time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
