// Package broker is the cluster's embedded MQTT broker (mochi-mqtt): nodes
// dial in with per-node credentials and may use only their own two topics,
// wire.DesiredTopic (read) and wire.ReportTopic (write); the cluster
// manager's own client may use everything under "thicket/".
//
// The desired set of a node is a retained message, so retained messages are
// kept without expiry for as long as the broker runs (they are not persisted:
// after a restart the manager publishes every node's desired set again).
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/thicket-edge/thicket/internal/mqttc"
)

// Config configures a Broker.
type Config struct {
	// Listen is the TCP address to listen on, e.g. ":10003" (":0" picks a port).
	Listen string
	// TLS, if set, makes the listener serve MQTT over TLS only (mqtts://):
	// nodes' passwords and desired sets never cross the network in clear.
	// Nil serves plain MQTT (development only).
	TLS *tls.Config
	// Auth decides who may connect. Required.
	Auth Authenticator
	// Logger receives the broker's own logs; mochi's internal logs are
	// passed through only from warn level up. Defaults to slog.Default().
	Logger *slog.Logger
}

// Tuning. The defaults of mochi are made for a general-purpose broker; these
// fit a few thousand nodes that each send a report a second and receive one
// retained message now and then.
const (
	// maxPacketSize bounds one MQTT packet: a payload of mqttc.MaxPayload
	// plus room for the topic and headers. Larger packets close the
	// connection.
	maxPacketSize = mqttc.MaxPayload + 64<<10
	// clientWritesPending is the per-client outbound queue (mochi allocates
	// it up front: 8 bytes a slot, per client). Past it, messages to that
	// client are dropped; reports and desired sets are idempotent.
	clientWritesPending = 1024
	// sessionExpiry bounds how long a disconnected persistent session is
	// kept (seconds); clean sessions end with their connection.
	sessionExpiry = 3600
	// sysInterval is how often mochi refreshes $SYS (seconds). No Thicket
	// client may read $SYS; the refresh costs a ReadMemStats.
	sysInterval = 600
)

// Broker is the embedded MQTT broker.
type Broker struct {
	cfg   Config
	srv   *mqtt.Server
	hook  *authHook
	tcp   *listeners.TCP
	log   *slog.Logger
	mu    sync.Mutex
	state int // 0 new, 1 started, 2 closed
}

// New creates a broker; Start makes it listen.
func New(cfg Config) (*Broker, error) {
	if cfg.Auth == nil {
		return nil, errors.New("broker: Config.Auth is required")
	}
	if cfg.Listen == "" {
		return nil, errors.New("broker: Config.Listen is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "mqtt-broker")

	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = maxPacketSize
	caps.MaximumClientWritesPending = clientWritesPending
	caps.MaximumSessionExpiryInterval = sessionExpiry
	// mochi deletes every retained message older than this (default one
	// day), whatever its protocol version: 0 keeps desired sets forever.
	caps.MaximumMessageExpiryInterval = 0
	// Report ACL refusals as "not authorized" (SUBACK 0x80 for MQTT 3.1.1).
	caps.Compatibilities.ObscureNotAuthorized = false

	srv := mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 slog.New(mochiLog{log.Handler()}),
		SysTopicResendInterval: sysInterval,
	})
	hook := newAuthHook(cfg.Auth, log)
	if err := srv.AddHook(hook, nil); err != nil {
		return nil, fmt.Errorf("broker: add auth hook: %w", err)
	}
	return &Broker{cfg: cfg, srv: srv, hook: hook, log: log}, nil
}

// Start listens on Config.Listen and serves clients in the background.
func (b *Broker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != 0 {
		return errors.New("broker: already started or closed")
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: b.cfg.Listen, TLSConfig: b.cfg.TLS})
	if err := b.srv.AddListener(closeSafeTCP{tcp, b.srv}); err != nil { // binds the socket
		return fmt.Errorf("broker: listen on %s: %w", b.cfg.Listen, err)
	}
	if err := b.srv.Serve(); err != nil { // non-blocking
		_ = b.srv.Close()
		b.state = 2
		return fmt.Errorf("broker: serve: %w", err)
	}
	b.tcp = tcp
	b.state = 1
	b.log.Info("mqtt broker listening", "addr", tcp.Address(), "tls", b.cfg.TLS != nil)
	return nil
}

// Addr is the address the broker listens on (the actual port for ":0"),
// or Config.Listen before Start.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tcp == nil {
		return b.cfg.Listen
	}
	return b.tcp.Address()
}

// Close disconnects every client and stops listening.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == 2 {
		return nil
	}
	b.state = 2
	return b.srv.Close()
}

// closeSafeTCP is mochi's TCP listener with a Close that does not deadlock.
// mochi's Server.Close hands a listener's Close a function that lists the
// listener's clients with Clients.GetByListener, which takes the clients'
// read lock twice (it calls Len inside): a client leaving at that moment
// (Clients.Delete waiting for the write lock between the two) blocks both
// for good, and Close never returns (seen in BenchmarkReports' Close;
// mochi-mqtt/server v2.7.9). This Close disconnects the listener's clients
// itself, from Clients.GetAll, which takes the read lock once.
type closeSafeTCP struct {
	*listeners.TCP
	srv *mqtt.Server
}

func (l closeSafeTCP) Close(listeners.CloseFn) {
	l.TCP.Close(func(id string) {
		for _, cl := range l.srv.Clients.GetAll() {
			if cl.Net.Listener == id && !cl.Closed() {
				_ = l.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}
	})
}

// Disconnect drops the connection and session of a node (e.g. the node was
// deleted or its credentials revoked). Whether it may connect again is up to
// the Authenticator. Dropping a node that is not connected is a no-op.
func (b *Broker) Disconnect(nodeID string) {
	cl, ok := b.srv.Clients.Get(mqttc.NodeClientID(nodeID))
	if !ok {
		return
	}
	// Forget the principal first: from now on the old client can neither
	// publish nor receive, even as a lingering persistent session.
	b.hook.forget(cl)
	_ = b.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
	b.log.Info("mqtt client disconnected by the cluster", "node", nodeID)
}

// ConnectedClients is the number of clients connected right now (for a
// Prometheus gauge).
func (b *Broker) ConnectedClients() int64 {
	return atomic.LoadInt64(&b.srv.Info.ClientsConnected)
}

// mochiLog filters mochi's logs: warn level and up only; no packet dumps
// (they hold payloads); and the listener's per-connection error, which
// mochi logs with an empty message for every connection that ends, only
// when it is not an ordinary end (EOF, closed, reset) nor a refusal the
// auth hook has logged already.
type mochiLog struct{ h slog.Handler }

var ordinaryEnds = []string{
	"EOF", "use of closed network connection", "connection reset by peer", "broken pipe",
	packets.ErrBadUsernameOrPassword.Reason, packets.ErrNotAuthorized.Reason,
}

func (m mochiLog) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && m.h.Enabled(ctx, l)
}

func (m mochiLog) Handle(ctx context.Context, r slog.Record) error {
	msg := r.Message
	if msg == "" {
		msg = "mqtt connection ended"
	}
	out := slog.NewRecord(r.Time, r.Level, msg, r.PC)
	ordinary := false
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "pk", "packet":
			return true
		case "error":
			if r.Message == "" {
				text := a.Value.String()
				for _, o := range ordinaryEnds {
					ordinary = ordinary || strings.Contains(text, o)
				}
			}
		}
		out.AddAttrs(a)
		return true
	})
	if ordinary {
		return nil
	}
	return m.h.Handle(ctx, out)
}

func (m mochiLog) WithAttrs(as []slog.Attr) slog.Handler { return mochiLog{m.h.WithAttrs(as)} }
func (m mochiLog) WithGroup(name string) slog.Handler    { return mochiLog{m.h.WithGroup(name)} }
