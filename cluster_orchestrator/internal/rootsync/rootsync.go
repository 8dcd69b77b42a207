// Package rootsync is the cluster's link to the root: it registers with a
// join token once, then syncs every interval — reporting nodes and instance
// statuses, receiving the full desired set. The cluster always dials the
// root, so it works behind NAT. When the root is unreachable the cluster
// keeps running on what it has (autonomy) and catches up when it returns.
package rootsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/wire"
)

var mSync = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: "thicket_cluster", Name: "root_syncs_total", Help: "Syncs with the root by result.",
}, []string{"result"})

// Cluster is what the link needs of the cluster manager.
type Cluster interface {
	Nodes() []wire.NodeInfo
	Statuses() []wire.InstanceStatus
	SetDesired([]wire.InstanceSpec)
	SetNetwork(clusterID, block string, n wire.Network)
}

// Config of the link.
type Config struct {
	RootURL   string
	JoinToken string
	Register  wire.ClusterRegisterRequest
	// Interval between syncs until the root says otherwise.
	Interval time.Duration
}

// Link syncs a cluster with the root.
type Link struct {
	cfg    Config
	st     *state.Store
	c      Cluster
	log    *slog.Logger
	http   *http.Client
	ok     bool
	lastOK time.Time
	kick   chan struct{}

	mu sync.Mutex
	id *state.Identity
}

// Kick asks for a sync now (an instance changed state), instead of at the
// next interval.
func (l *Link) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// New returns a link.
func New(cfg Config, st *state.Store, c Cluster, log *slog.Logger) *Link {
	cfg.RootURL = strings.TrimRight(cfg.RootURL, "/")
	cfg.Register.Version = wire.Version
	return &Link{cfg: cfg, st: st, c: c, log: log, http: &http.Client{Timeout: 15 * time.Second}, kick: make(chan struct{}, 1)}
}

// errRejected means the root refused our credential or token.
var errRejected = errors.New("rejected by the root")

// Run syncs until ctx ends: every interval and when kicked, while a watch
// brings changes of the desired set down at once.
func (l *Link) Run(ctx context.Context) {
	go l.watch(ctx)
	interval := l.cfg.Interval
	for {
		next, err := l.once(ctx)
		if err != nil && ctx.Err() == nil {
			mSync.WithLabelValues("error").Inc()
			if l.ok || l.lastOK.IsZero() {
				l.log.Warn("root unreachable; the cluster goes on by itself", "root", l.cfg.RootURL, "err", err)
			}
			l.ok = false
		} else if err == nil {
			mSync.WithLabelValues("ok").Inc()
			if !l.ok {
				l.log.Info("synced with the root", "root", l.cfg.RootURL, "cluster_id", l.id.ClusterID)
			}
			l.ok, l.lastOK = true, time.Now()
			if next > 0 {
				interval = next
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		case <-l.kick:
			// Coalesce a burst of changes into one sync.
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// watch holds a long poll open at the root: the answer comes as soon as the
// desired set or network differs from the last one seen.
func (l *Link) watch(ctx context.Context) {
	var gen int64
	client := &http.Client{Timeout: 40 * time.Second}
	for ctx.Err() == nil {
		l.mu.Lock()
		id := l.id
		l.mu.Unlock()
		if id == nil {
			sleep(ctx, time.Second) // not registered yet: the sync loop does that
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			fmt.Sprintf("%s/api/cluster/desired?after=%d&wait=25s", l.cfg.RootURL, gen), nil)
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+id.Credential)
		resp, err := client.Do(req)
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		var d wire.ClusterDesired
		err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&d)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			sleep(ctx, time.Second) // the sync loop handles credentials and errors
			continue
		}
		if d.Generation != gen {
			l.c.SetDesired(d.Instances)
			l.c.SetNetwork(id.ClusterID, d.Block, d.Network)
			gen = d.Generation
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// once registers if needed and syncs; it returns the root's wished interval.
func (l *Link) once(ctx context.Context) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.id == nil || l.id.RootURL != l.cfg.RootURL {
		id, err := l.st.Identity(ctx)
		if err != nil {
			return 0, err
		}
		if id == nil || id.RootURL != l.cfg.RootURL {
			if id, err = l.register(ctx); err != nil {
				return 0, err
			}
		}
		l.id = id
	}
	req := wire.ClusterSync{Version: wire.Version, Nodes: l.c.Nodes(), Instances: l.c.Statuses()}
	var d wire.ClusterDesired
	err := l.post(ctx, "/api/cluster/sync", l.id.Credential, req, &d)
	if errors.Is(err, errRejected) {
		// The root no longer knows our credential (revoked, or a new root):
		// register again next time.
		l.log.Warn("the root refused the cluster credential; registering again")
		l.id = nil
		if id, rerr := l.register(ctx); rerr == nil {
			l.id = id
		}
		return 0, err
	}
	if err != nil {
		return 0, err
	}
	l.c.SetDesired(d.Instances)
	l.c.SetNetwork(l.id.ClusterID, d.Block, d.Network)
	if d.Block != "" && d.Block != l.id.Block {
		l.id.Block = d.Block
		if err := l.st.SaveIdentity(ctx, *l.id); err != nil {
			return 0, err
		}
	}
	return time.Duration(d.SyncIntervalMS) * time.Millisecond, nil
}

func (l *Link) register(ctx context.Context) (*state.Identity, error) {
	var resp wire.ClusterRegisterResponse
	if err := l.post(ctx, "/api/cluster/register", l.cfg.JoinToken, l.cfg.Register, &resp); err != nil {
		if errors.Is(err, errRejected) {
			return nil, fmt.Errorf("register with the root: the join token was refused: %w", err)
		}
		return nil, fmt.Errorf("register with the root: %w", err)
	}
	id := &state.Identity{ClusterID: resp.ClusterID, Credential: resp.Credential, RootURL: l.cfg.RootURL, Block: resp.Block}
	if err := l.st.SaveIdentity(ctx, *id); err != nil {
		return nil, err
	}
	l.log.Info("registered with the root", "root", l.cfg.RootURL, "cluster_id", id.ClusterID, "name", l.cfg.Register.Name)
	return id, nil
}

func (l *Link) post(ctx context.Context, path, token string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.cfg.RootURL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := l.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%s: %w: %s", path, errRejected, bytes.TrimSpace(data))
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, bytes.TrimSpace(data))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", path, err)
	}
	return nil
}
