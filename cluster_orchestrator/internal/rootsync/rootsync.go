// Package rootsync is the cluster's link to the root: it registers with a
// join token once, then
//   - syncs every interval (and at once when an instance changes state),
//     reporting only what changed since the last sync the root acknowledged
//     (see report.go): everything after a start or when the root asks;
//   - holds a watch open at the root, which answers as soon as the cluster's
//     desired set or the overlay changed, with only the changes (the one
//     route of desired state, see desired.go).
//
// The cluster always dials the root, so it works behind NAT. When the root
// is unreachable the cluster keeps running on what it has (autonomy) and
// catches up when it returns.
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
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/netcoord"
	"github.com/thicket-edge/thicket/internal/pki"
)

var (
	mSync = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "thicket_cluster", Name: "root_syncs_total", Help: "Syncs with the root by result.",
	}, []string{"result"})
	mSyncBytes = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "thicket_cluster", Name: "root_sync_bytes",
		Help:    "Size of the syncs sent to the root (request bodies), bounded by the sync budget whatever the workloads print.",
		Buckets: prometheus.ExponentialBuckets(1<<10, 4, 8), // 1 KiB .. 16 MiB
	})
)

// Cluster is what the link needs of the cluster manager.
type Cluster interface {
	Nodes() []wire.NodeInfo
	Statuses() []wire.InstanceStatus
	SetDesired(specs []wire.InstanceSpec, removed []string)
	// UpdateDesired takes a change of the desired set.
	UpdateDesired(specs []wire.InstanceSpec, removed []string)
	SetNetwork(clusterID string, blocks []string, n wire.Network)
	// WantBlocks: how many more address blocks the cluster needs.
	WantBlocks() int
	// TakeEvents hands over what happened to instances since the last
	// call; the link sends them until the root took them.
	TakeEvents() []wire.Event
	// DeleteNodes takes the root's list of the nodes an admin deleted.
	DeleteNodes(ctx context.Context, ids []string) (int, error)
	// SetNodeModes takes the root's lists of the nodes an admin cordoned
	// and of those it drains.
	SetNodeModes(cordoned, drained []string)
}

// maxPendingEvents bounds the events waiting for the root: while it is
// away for long, the oldest go.
const maxPendingEvents = 4096

// Config of the link.
type Config struct {
	RootURL   string
	JoinToken string
	Register  wire.ClusterRegisterRequest
	// Interval between syncs until the root says otherwise.
	Interval time.Duration
	// AllowPlaintext allows an http:// RootURL (development only; see
	// trust.go).
	AllowPlaintext bool
	// NodeTokens, if set, takes the root's node tokens and tells the uses
	// of single-use ones (package nodetokens).
	NodeTokens NodeTokens
	// CAPin is the pin of the cluster's CA, told the root with every sync
	// so that the node tokens it prints carry it ("": plain text).
	CAPin string
	// ClientCertFile keeps the cluster's client certificate towards the
	// root and its key (clientcert.go; "": none, the credential alone).
	ClientCertFile string
}

// NodeTokens is what the link needs of the cluster's node token keeper.
type NodeTokens interface {
	SetTokens(ctx context.Context, list []wire.NodeToken) error
	Pending() []wire.NodeTokenUse
}

// Link syncs a cluster with the root.
type Link struct {
	// events wait for the root to take them (TakeEvents).
	events []wire.Event
	cfg    Config
	st     *state.Store
	c      Cluster
	log    *slog.Logger
	http   *http.Client
	// cert is the client certificate towards the root (nil: none);
	// certGen counts the certificates taken (clientcert.go).
	cert    *pki.ClientCert
	certGen atomic.Uint64
	// pin is the root CA's pin the link verifies the root against ("":
	// plain HTTP), secret the join token without it.
	pin, secret string
	ok          bool
	lastOK      time.Time
	kick        chan struct{}

	mu  sync.Mutex
	id  *state.Identity
	rep reported // what the root acknowledged (under mu)
	// refused: the root refused our credential, which is said once until
	// a sync works again (under mu).
	refused bool
	// asked is when the link last asked for address blocks, and how many
	// the cluster had then (under mu): it asks again only when the root
	// answered (the count changed) or after askEvery.
	asked     time.Time
	askedWith int
}

// askEvery bounds how often the link repeats a request for address blocks
// the root has not answered.
const askEvery = 10 * time.Second

// askBlocks returns how many address blocks to ask for in this sync.
func (l *Link) askBlocks(now time.Time) int {
	want := l.c.WantBlocks()
	if want == 0 {
		return 0
	}
	have := len(l.id.AllBlocks())
	if have == l.askedWith && now.Sub(l.asked) < askEvery {
		return 0
	}
	l.asked, l.askedWith = now, have
	return want
}

// Kick asks for a sync now (an instance changed state), instead of at the
// next interval.
func (l *Link) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// New returns a link, or an error when it could not trust the root (see
// trust).
func New(ctx context.Context, cfg Config, st *state.Store, c Cluster, log *slog.Logger) (*Link, error) {
	cfg.RootURL = strings.TrimRight(cfg.RootURL, "/")
	cfg.Register.Version = wire.Version
	pin, secret, err := trust(ctx, cfg, st)
	if err != nil {
		return nil, err
	}
	if pin == "" {
		log.Warn("INSECURE: --insecure-plaintext-root: the cluster's credential and desired sets cross the network to the root in clear", "root", cfg.RootURL)
	}
	l := &Link{cfg: cfg, st: st, c: c, log: log, pin: pin, secret: secret, kick: make(chan struct{}, 1)}
	if cfg.ClientCertFile != "" && pin != "" {
		l.cert = pki.OpenClientCert(cfg.ClientCertFile)
	}
	l.http = client(cfg.RootURL, pin, 15*time.Second, l.getClientCertificate)
	return l, nil
}

// errRejected means the root refused our credential or token.
var errRejected = errors.New("rejected by the root")

// errNameTaken means the root refused to let us register under a name a
// registered cluster holds.
var errNameTaken = errors.New("cluster name taken")

// Run syncs until ctx ends: every interval and when kicked, while a watch
// brings changes of the desired set down at once.
func (l *Link) Run(ctx context.Context) {
	go l.watch(ctx)
	go l.renewCerts(ctx)
	interval := l.cfg.Interval
	for {
		next, err := l.once(ctx)
		if err != nil && ctx.Err() == nil {
			mSync.WithLabelValues("error").Inc()
			switch {
			case !l.ok && !l.lastOK.IsZero():
			case errors.Is(err, pki.ErrPinMismatch):
				l.log.Error("the root's certificate does not match the pin; the cluster goes on by itself", "root", l.cfg.RootURL, "err", err)
			default:
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
// desired set or network changed after the generation held, with only the
// changes.
func (l *Link) watch(ctx context.Context) {
	var d desired
	client := client(l.cfg.RootURL, l.pin, 40*time.Second, l.getClientCertificate)
	var certGen uint64
	for ctx.Err() == nil {
		l.freshConns(client, &certGen)
		l.mu.Lock()
		id := l.id
		l.mu.Unlock()
		if id == nil {
			sleep(ctx, time.Second) // not registered yet: the sync loop does that
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			fmt.Sprintf("%s/api/cluster/desired?delta=1&epoch=%s&after=%d&wait=25s", l.cfg.RootURL, url.QueryEscape(d.epoch), d.gen), nil)
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+id.Credential)
		resp, err := client.Do(req)
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		var ans wire.ClusterDesired
		err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&ans)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			sleep(ctx, time.Second) // the sync loop handles credentials and errors
			continue
		}
		blocks := ans.Blocks
		if len(blocks) == 0 && ans.Block != "" {
			blocks = []string{ans.Block} // a root of an earlier version
		}
		delta := ans.Delta && ans.Epoch == d.epoch && d.specs != nil
		blocksChanged := !slices.Equal(blocks, d.blocks)
		// Before the desired set: the instances of deleted nodes are
		// placed on the others at once.
		if _, err := l.c.DeleteNodes(ctx, ans.DeletedNodes); err != nil {
			l.log.Warn("delete the nodes the root lists as deleted", "err", err)
		}
		if l.cfg.NodeTokens != nil {
			if err := l.cfg.NodeTokens.SetTokens(ctx, ans.NodeTokens); err != nil {
				l.log.Warn("take the root's node join tokens", "err", err)
			}
		}
		l.c.SetNodeModes(ans.CordonedNodes, ans.DrainedNodes)
		specs, network, _ := d.apply(ans)
		switch {
		case !delta:
			l.c.SetDesired(specs, ans.Removed)
		case len(ans.Instances) > 0 || len(ans.Removed) > 0:
			l.c.UpdateDesired(ans.Instances, ans.Removed)
		}
		if !delta || !ans.NetworkUnchanged || blocksChanged {
			l.c.SetNetwork(id.ClusterID, blocks, network)
		}
		if len(blocks) > 0 && !slices.Equal(blocks, id.AllBlocks()) {
			l.mu.Lock()
			if l.id != nil {
				l.id.Block, l.id.Blocks = blocks[0], blocks
				if err := l.st.SaveIdentity(ctx, *l.id); err != nil {
					l.log.Warn("save the cluster's address blocks", "err", err)
				}
			}
			l.mu.Unlock()
		}
		d.blocks = blocks
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
			// The credential from before (the root under another
			// address) shows that the name is ours.
			var cred string
			if id != nil {
				cred = id.Credential
			}
			if id, err = l.register(ctx, cred); err != nil {
				return 0, err
			}
		}
		if l.pin != "" && id.RootPin != l.pin {
			// Restarts verify the root even with a token without a pin.
			id.RootPin = l.pin
			if err := l.st.SaveIdentity(ctx, *id); err != nil {
				return 0, err
			}
		}
		l.id = id
	}
	now := time.Now()
	nodes := l.c.Nodes()
	req, more := l.rep.next(nodes, l.c.Statuses(), now)
	req.Location = l.cfg.Register.Location
	cs := make([]*wire.Coordinate, 0, len(nodes))
	for _, n := range nodes {
		if n.Active {
			cs = append(cs, n.Coordinate)
		}
	}
	req.Coordinate = netcoord.Centroid(cs...)
	req.WantBlocks = l.askBlocks(now)
	l.events = wire.AppendEvents(l.events, maxPendingEvents, l.c.TakeEvents()...)
	req.Events = l.events[:min(len(l.events), wire.MaxEvents)]
	req.CAPin = l.cfg.CAPin
	if l.cfg.NodeTokens != nil {
		req.NodeTokenUses = l.cfg.NodeTokens.Pending()
	}
	var ack wire.ClusterSyncAck
	err := l.post(ctx, "/api/cluster/sync", l.id.Credential, req, &ack)
	if err == nil { // the root took them (also when it asks for a resync)
		l.events = append(l.events[:0], l.events[len(req.Events):]...)
	}
	if errors.Is(err, errRejected) {
		// The root no longer knows our credential (revoked, or a new root):
		// register again, now and until it works (said once).
		if !l.refused {
			l.log.Warn("the root refused the cluster credential; registering again")
		}
		l.refused = true
		l.id = nil
		l.rep = reported{}
		id, rerr := l.register(ctx, "")
		if rerr != nil {
			return 0, fmt.Errorf("%w; %w", err, rerr)
		}
		l.id = id
		return 0, err
	}
	if errors.Is(err, errCertRefused) {
		// Our certificate expired (the root was away longer than it
		// lasts) or was lost: a registration with our credential brings
		// a new one.
		l.log.Warn("the root refused the cluster's client certificate; registering again", "err", err)
		id, rerr := l.register(ctx, l.id.Credential)
		if rerr != nil {
			return 0, fmt.Errorf("%w; %w", err, rerr)
		}
		l.id, l.rep = id, reported{}
		return 0, err
	}
	l.refused = false
	if err != nil {
		return 0, err
	}
	if ack.Resync {
		// The root restarted: it gets everything at the next sync, now.
		l.rep = reported{}
		l.Kick()
	} else {
		l.rep.acked(req, ack.Epoch, now)
		if more {
			l.Kick() // the rest of the changes, at once
		}
	}
	return time.Duration(ack.SyncIntervalMS) * time.Millisecond, nil
}

// register registers with the join token, showing the credential this
// cluster holds from before, if any ("" if none).
func (l *Link) register(ctx context.Context, credential string) (*state.Identity, error) {
	var resp wire.ClusterRegisterResponse
	reg := l.cfg.Register
	reg.Credential = credential
	key, csr, err := l.newCSR()
	if err != nil {
		return nil, err
	}
	reg.CSRPEM = csr
	if err := l.post(ctx, "/api/cluster/register", l.secret, reg, &resp); err != nil {
		switch {
		case errors.Is(err, errRejected):
			return nil, fmt.Errorf("register with the root: the join token was refused: %w", err)
		case errors.Is(err, errNameTaken):
			return nil, fmt.Errorf("register with the root: the cluster name %q belongs to another registered cluster "+
				"(if this is that cluster and it lost its data dir, an admin deletes the old one or gives a join token scoped to the name): %w",
				reg.Name, err)
		}
		return nil, fmt.Errorf("register with the root: %w", err)
	}
	id := &state.Identity{ClusterID: resp.ClusterID, Credential: resp.Credential, RootURL: l.cfg.RootURL, RootPin: l.pin, Block: resp.Block}
	if err := l.takeCert(resp.CertPEM, key); err != nil {
		return nil, err
	}
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
	if _, ok := body.(wire.ClusterSync); ok {
		mSyncBytes.Observe(float64(len(b)))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.cfg.RootURL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := l.http.Do(req)
	if err != nil {
		return refusedRoot(l.cfg.RootURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%s: %w: %s", path, errRejected, bytes.TrimSpace(data))
	}
	if resp.StatusCode == http.StatusForbidden && bytes.Contains(data, []byte("client certificate")) {
		return fmt.Errorf("%s: %w: %s", path, errCertRefused, bytes.TrimSpace(data))
	}
	if resp.StatusCode == http.StatusConflict {
		return fmt.Errorf("%s: %w: %s", path, errNameTaken, bytes.TrimSpace(data))
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, bytes.TrimSpace(data))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", path, err)
	}
	return nil
}
