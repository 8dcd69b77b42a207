// Package simnode simulates worker nodes for control-plane measurements:
// lightweight clients in one process that speak the real node protocol.
// Each registers over HTTP with the node join token (getting its own MQTT
// credentials), connects to the cluster's broker as
// mqttc.NodeClientID(id), subscribes to its retained desired set and
// publishes a wire.NodeReport every report interval — and at once when its
// desired set changes, as the node engine does — in which every desired
// instance is RUNNING unless a status was forced with SetStatus.
package simnode

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/mqttc"
	"github.com/thicket-edge/thicket/internal/pki"
)

// Config of a fleet.
type Config struct {
	// ClusterURL is the cluster's node API; Token its node join token.
	ClusterURL string
	Token      string
	// N nodes named <Prefix><i>.
	N      int
	Prefix string
	// Capacity each node offers.
	Capacity wire.Resources
	// Parallel registrations and connections (16 if zero).
	Parallel int
}

// Fleet is a set of simulated nodes.
type Fleet struct {
	cfg   Config
	nodes []*node
	// http reaches the node API as nodes do (pinning the cluster's CA for
	// https://); secret is the join token's secret.
	http   *http.Client
	secret string
	// ReportsSent and ReportErrors count publications.
	ReportsSent, ReportErrors atomic.Int64

	mu sync.Mutex
	// owner is the node whose desired set holds an instance key.
	owner map[string]*node
	// firstRunning is when an instance was first reported RUNNING.
	firstRunning map[string]time.Time
}

type node struct {
	f      *Fleet
	name   string
	creds  wire.NodeRegisterResponse
	client *mqttc.Client
	kick   chan struct{}

	mu       sync.Mutex
	desired  wire.NodeDesired
	started  map[string]time.Time
	override map[string]wire.InstanceStatus
}

// Start registers and connects all nodes and starts their report loops,
// which run until ctx ends or Close.
func Start(ctx context.Context, cfg Config) (*Fleet, error) {
	if cfg.Parallel == 0 {
		cfg.Parallel = 16
	}
	f := &Fleet{cfg: cfg, owner: map[string]*node{}, firstRunning: map[string]time.Time{}, http: &http.Client{Timeout: 30 * time.Second}}
	pin, secret, err := pki.ParseJoinToken(cfg.Token)
	if err != nil {
		return nil, err
	}
	f.secret = secret
	if strings.HasPrefix(cfg.ClusterURL, "https://") {
		u, err := url.Parse(cfg.ClusterURL)
		if err != nil {
			return nil, err
		}
		if pin == "" {
			return nil, fmt.Errorf("simnode: %s: the node join token carries no pin", cfg.ClusterURL)
		}
		f.http.Transport = &http.Transport{TLSClientConfig: pki.PinnedClient(pin, u.Hostname()), MaxIdleConnsPerHost: cfg.Parallel}
	}
	f.nodes = make([]*node, cfg.N)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		sem   = make(chan struct{}, cfg.Parallel)
	)
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := range f.nodes {
		n := &node{f: f, name: fmt.Sprintf("%s%d", cfg.Prefix, i), kick: make(chan struct{}, 1),
			started: map[string]time.Time{}, override: map[string]wire.InstanceStatus{}}
		f.nodes[i] = n
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := n.join(jctx, ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first != nil {
		f.Close()
		return nil, first
	}
	for _, n := range f.nodes {
		go n.run(ctx)
	}
	return f, nil
}

// Close disconnects every node.
func (f *Fleet) Close() {
	var wg sync.WaitGroup
	for _, n := range f.nodes {
		if n != nil && n.client != nil {
			wg.Add(1)
			go func() { defer wg.Done(); n.client.Close() }()
		}
	}
	wg.Wait()
}

// FirstRunning is when each of the keys was first reported RUNNING; ok is
// false while some has not been.
func (f *Fleet) FirstRunning(keys []string) (last time.Time, missing int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		t, ok := f.firstRunning[k]
		if !ok {
			missing++
			continue
		}
		if t.After(last) {
			last = t
		}
	}
	return last, missing
}

// Connected counts the nodes whose broker connection is up.
func (f *Fleet) Connected() int {
	n := 0
	for _, nd := range f.nodes {
		if nd.client != nil && nd.client.Connected() {
			n++
		}
	}
	return n
}

// Assignments maps every instance key in the nodes' desired sets to its
// node's name.
func (f *Fleet) Assignments() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]string, len(f.owner))
	for k, n := range f.owner {
		out[k] = n.name
	}
	return out
}

// DesiredSince counts the nodes whose desired set has a generation of at
// least gen.
func (f *Fleet) DesiredSince(gen int64) int {
	n := 0
	for _, nd := range f.nodes {
		nd.mu.Lock()
		if nd.desired.Generation >= gen {
			n++
		}
		nd.mu.Unlock()
	}
	return n
}

// Placed is the number of instance keys in the nodes' desired sets.
func (f *Fleet) Placed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.owner)
}

// SetStatus makes the node holding key report it with status and detail
// (status "" returns to RUNNING) and publishes a report at once. It
// returns the time just before that report was published.
func (f *Fleet) SetStatus(ctx context.Context, key, status, detail string) (time.Time, error) {
	f.mu.Lock()
	n := f.owner[key]
	f.mu.Unlock()
	if n == nil {
		return time.Time{}, fmt.Errorf("instance %s is on no simulated node", key)
	}
	n.mu.Lock()
	if status == "" {
		delete(n.override, key)
	} else {
		n.override[key] = wire.InstanceStatus{Key: key, Status: status, Detail: detail}
	}
	n.mu.Unlock()
	t := time.Now()
	return t, n.report(ctx)
}

// join registers and connects; subscriptions live as long as life.
func (n *node) join(ctx, life context.Context, i int) error {
	req := wire.NodeRegisterRequest{Version: wire.Version, Name: n.name, Arch: "amd64",
		Virtualizations: []string{"container"}, Capacity: n.f.cfg.Capacity, Address: address(i)}
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(n.f.cfg.ClusterURL, "/")+"/api/node/register", bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+n.f.secret)
	resp, err := n.f.http.Do(hreq)
	if err != nil {
		return fmt.Errorf("register %s: %w", n.name, err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("register %s: %s: %s", n.name, resp.Status, data)
	}
	if err := json.Unmarshal(data, &n.creds); err != nil {
		return fmt.Errorf("register %s: %w", n.name, err)
	}
	var tc *tls.Config
	if n.creds.MQTTCAPEM != "" {
		u, err := url.Parse(n.creds.MQTTURL)
		if err != nil {
			return err
		}
		if tc, err = pki.CAClient([]byte(n.creds.MQTTCAPEM), u.Hostname()); err != nil {
			return fmt.Errorf("register %s: broker CA: %w", n.name, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n.client, err = mqttc.Connect(cctx, mqttc.Options{
		URL: n.creds.MQTTURL, TLS: tc, ClientID: mqttc.NodeClientID(n.creds.NodeID),
		Username: n.creds.MQTTUsername, Password: n.creds.MQTTPassword,
		Logger: slog.New(slog.DiscardHandler),
		OnConnect: func(c *mqttc.Client) {
			// Runs on every (re)connection: resubscribe.
			sctx, cancel := context.WithTimeout(life, 30*time.Second)
			defer cancel()
			if err := c.Subscribe(sctx, n.creds.DesiredTopic, 1, n.onDesired); err != nil && life.Err() == nil {
				slog.Warn("simulated node cannot subscribe", "node", n.name, "err", err)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("connect %s: %w", n.name, err)
	}
	return nil
}

// address is a documentation-range address for node i.
func address(i int) string { return fmt.Sprintf("198.18.%d.%d", i/250, 1+i%250) }

// onDesired runs on the client's delivery goroutine: it must not block.
func (n *node) onDesired(_ string, payload []byte) {
	var d wire.NodeDesired
	if err := json.Unmarshal(payload, &d); err != nil || d.Version != wire.Version {
		return
	}
	n.mu.Lock()
	if d.Generation < n.desired.Generation {
		n.mu.Unlock()
		return
	}
	old := n.desired.Instances
	n.desired = d
	now := time.Now().UTC()
	for _, sp := range d.Instances {
		if _, ok := n.started[sp.Key]; !ok {
			n.started[sp.Key] = now
		}
	}
	n.mu.Unlock()

	n.f.mu.Lock()
	for _, sp := range old {
		if n.f.owner[sp.Key] == n {
			delete(n.f.owner, sp.Key)
		}
	}
	for _, sp := range d.Instances {
		n.f.owner[sp.Key] = n
	}
	n.f.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *node) run(ctx context.Context) {
	interval := time.Duration(n.creds.ReportIntervalMS) * time.Millisecond
	if interval <= 0 {
		interval = time.Second
	}
	// Spread the fleet's reports over the interval, as independent nodes are.
	select {
	case <-ctx.Done():
		return
	case <-time.After(rand.N(interval)):
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n.report(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.kick:
		}
	}
}

// report publishes the node's report: every desired instance RUNNING,
// unless overridden.
func (n *node) report(ctx context.Context) error {
	n.mu.Lock()
	r := wire.NodeReport{Version: wire.Version, NodeID: n.creds.NodeID, Time: time.Now().UTC(), Generation: n.desired.Generation,
		Full: n.desired.Version != "",
		Node: wire.NodeInfo{Name: n.name, Arch: "amd64", Virtualizations: []string{"container"}, Capacity: n.f.cfg.Capacity,
			CPUPercent: 3, MemoryPercent: 20, Active: true},
		Instances: make([]wire.InstanceStatus, 0, len(n.desired.Instances))}
	for _, sp := range n.desired.Instances {
		st, ok := n.override[sp.Key]
		if !ok {
			st = wire.InstanceStatus{Key: sp.Key, Status: wire.StatusRunning, StartedAt: n.started[sp.Key], MemoryMB: 8, CPUPercent: 0.5}
		}
		r.Instances = append(r.Instances, st)
	}
	n.mu.Unlock()
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := n.client.Publish(pctx, n.creds.ReportTopic, 0, false, b); err != nil {
		n.f.ReportErrors.Add(1)
		return err
	}
	n.f.ReportsSent.Add(1)
	now := time.Now()
	n.f.mu.Lock()
	for _, st := range r.Instances {
		if _, seen := n.f.firstRunning[st.Key]; !seen && st.Status == wire.StatusRunning {
			n.f.firstRunning[st.Key] = now
		}
	}
	n.f.mu.Unlock()
	return nil
}
