// Package mqttc is the MQTT client both tiers use (the cluster manager
// towards its broker, the node engine towards its cluster): a thin wrapper
// over paho.mqtt.golang with context-aware calls, automatic reconnection,
// and clear errors where paho would retry or succeed silently (a refused
// CONNECT, a refused SUBSCRIBE).
//
// Sessions are clean: the broker forgets subscriptions when a connection
// drops, so subscribe in Options.OnConnect, which runs on every
// (re)connection. Retained messages (a node's desired set) are delivered
// again on every such subscription, which is what a reconciler wants.
package mqttc

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/thicket-edge/thicket/internal/pki"
)

// MaxPayload is the largest payload Thicket sends in one message; the
// embedded broker refuses larger packets (it closes the connection).
const MaxPayload = 4 << 20

// NodeClientID is the MQTT client ID of a node. The embedded broker
// accepts a node's credentials only under this client ID, so that no node
// can take over (or squat on) another node's or the manager's session.
func NodeClientID(nodeID string) string { return "thicket-node-" + nodeID }

// Errors callers may test with errors.Is.
var (
	// ErrNotAuthorized: the broker refused the credentials (CONNACK 4 or 5).
	// Connect does not retry it.
	ErrNotAuthorized = errors.New("mqtt: not authorized")
	// ErrRefused: the broker refused the connection for another permanent
	// reason (protocol version, client identifier).
	ErrRefused = errors.New("mqtt: connection refused")
	// ErrSubscriptionRefused: the broker answered a SUBSCRIBE with 0x80.
	ErrSubscriptionRefused = errors.New("mqtt: subscription refused")
	// ErrNotConnected: the connection is down right now (it is being
	// re-established); nothing was queued.
	ErrNotConnected = errors.New("mqtt: not connected")
)

// Options configures a Client.
type Options struct {
	// URL of the broker: tcp://host:port or mqtt://host:port (an alias);
	// tls://, ssl:// and mqtts:// (an alias of tls://) for TLS.
	URL string
	// TLS configures the connection of a TLS URL (e.g. pki.PinnedClient,
	// pki.CAClient); nil trusts the system's roots. It is an error with a
	// plain URL.
	TLS *tls.Config
	// ClientID defaults to Username, or to a random ID when both are
	// empty. A node must use NodeClientID(its node ID).
	ClientID string
	Username string
	Password string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnConnect is called on every (re)connection, before Connect returns
	// for the first one. Subscribe here so subscriptions survive reconnects.
	OnConnect func(*Client)
}

// subackFailure is the SUBACK return code of a refused subscription.
const subackFailure = 0x80

// Timing. Connect retries network failures with this backoff until its ctx
// ends; after the first connection paho reconnects by itself, backing off
// up to maxReconnect.
const (
	connectTimeout = 10 * time.Second
	firstBackoff   = 100 * time.Millisecond
	maxBackoff     = 2 * time.Second
	maxReconnect   = 5 * time.Second
	keepAlive      = 30 * time.Second
	writeTimeout   = 10 * time.Second
	waitWarn       = 5 * time.Second
)

// Client is a connected MQTT client. Its methods are safe for concurrent use.
type Client struct {
	pc  paho.Client
	url string
	log *slog.Logger

	// up: the first connection was made (later failures are paho's
	// reconnections); refusedAt: when a TLS refusal was last logged.
	mu        sync.Mutex
	up        bool
	refusedAt time.Time
}

// Connect connects to the broker and returns once the first connection is
// up and Options.OnConnect has run for it, or ctx ends. Network failures
// are retried until then; a refused CONNECT (bad credentials: ErrNotAuthorized)
// fails at once.
func Connect(ctx context.Context, o Options) (*Client, error) {
	u, err := brokerURL(o.URL)
	if err != nil {
		return nil, err
	}
	if o.TLS != nil && !strings.HasPrefix(u, "tls://") {
		return nil, fmt.Errorf("mqtt: broker url %q: a TLS configuration for a plain URL (want mqtts://)", o.URL)
	}
	clientID := o.ClientID
	if clientID == "" {
		clientID = o.Username
	}
	if clientID == "" {
		clientID = randomID()
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Client{url: u, log: log.With("broker", u, "client", clientID)}

	backoff := firstBackoff
	started, warned := time.Now(), time.Time{}
	for attempt := 1; ; attempt++ {
		connected := make(chan struct{})
		var once sync.Once
		po := paho.NewClientOptions().
			AddBroker(u).
			SetClientID(clientID).
			SetUsername(o.Username).
			SetPassword(o.Password).
			SetProtocolVersion(4). // MQTT 3.1.1; no silent fallback to 3.1
			SetCleanSession(true).
			SetOrderMatters(true).
			SetStore(noStore{}).
			SetKeepAlive(keepAlive).
			SetConnectTimeout(connectTimeout).
			SetWriteTimeout(writeTimeout).
			SetAutoReconnect(true).
			SetConnectRetry(false).
			SetMaxReconnectInterval(maxReconnect).
			SetTLSConfig(o.TLS).
			SetOnConnectHandler(func(paho.Client) {
				if o.OnConnect != nil {
					o.OnConnect(c)
				}
				once.Do(func() { close(connected) })
			}).
			SetConnectionLostHandler(func(_ paho.Client, err error) {
				c.log.Warn("mqtt connection lost; reconnecting", "err", err)
			}).
			SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
				c.log.Debug("mqtt reconnecting")
			}).
			SetConnectionNotificationHandler(func(_ paho.Client, n paho.ConnectionNotification) {
				// A reconnection that fails TLS verification (a man in the
				// middle after the first connection) is said as loudly as a
				// first one; paho retries it by itself.
				if f, ok := n.(paho.ConnectionNotificationBrokerFailed); ok && tlsRefused(f.Reason) {
					c.mu.Lock()
					say := c.up && time.Since(c.refusedAt) >= waitWarn
					if say {
						c.refusedAt = time.Now()
					}
					c.mu.Unlock()
					if say {
						c.log.Error("the MQTT broker failed TLS verification at a reconnection; not sending credentials, retrying", "err", f.Reason)
					}
				}
			})
		pc := paho.NewClient(po)
		c.pc = pc // before Connect: OnConnect may use c

		tok := pc.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			go func() { <-tok.Done(); pc.Disconnect(0) }()
			return nil, fmt.Errorf("mqtt: connect to %s: %w", u, ctx.Err())
		}
		if err := tok.Error(); err != nil {
			rc := tok.(*paho.ConnectToken).ReturnCode()
			switch rc {
			case packets.ErrRefusedBadUsernameOrPassword, packets.ErrRefusedNotAuthorised:
				return nil, fmt.Errorf("mqtt: connect to %s as %q: %w (%v)", u, o.Username, ErrNotAuthorized, err)
			case packets.ErrRefusedBadProtocolVersion, packets.ErrRefusedIDRejected:
				return nil, fmt.Errorf("mqtt: connect to %s as client %q: %w (%v)", u, clientID, ErrRefused, err)
			}
			// A wait that lasts is said at warn level, every waitWarn: a
			// broker that never answers (a wrong address) must not look
			// like a hang. A server that fails TLS verification (a man in
			// the middle, or a broker of another CA) is said at once, as an
			// error, and tried again: the real broker may come back.
			if tlsRefused(err) {
				if time.Since(warned) >= waitWarn {
					c.log.Error("the MQTT broker failed TLS verification; not sending credentials, retrying", "attempt", attempt, "err", err)
					warned = time.Now()
				}
			} else if time.Since(started) >= waitWarn && time.Since(warned) >= waitWarn {
				c.log.Warn("waiting for the MQTT broker", "attempt", attempt, "waiting", time.Since(started).Round(time.Second), "err", err)
				warned = time.Now()
			} else {
				c.log.Debug("mqtt connect failed; retrying", "attempt", attempt, "err", err)
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil, fmt.Errorf("mqtt: connect to %s: %w (last error: %v)", u, ctx.Err(), err)
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		select {
		case <-connected:
			c.log.Debug("mqtt connected")
			c.mu.Lock()
			c.up = true
			c.mu.Unlock()
			return c, nil
		case <-ctx.Done():
			pc.Disconnect(0)
			return nil, fmt.Errorf("mqtt: connect to %s: %w", u, ctx.Err())
		}
	}
}

// Publish sends a message and waits until it is written (QoS 0) or
// acknowledged (QoS 1, 2), or ctx ends. Nothing is queued or resent across
// a reconnection: when the connection is down Publish fails at once with
// ErrNotConnected, and a QoS 1 publish whose connection drops before its
// PUBACK fails with ctx's error. A reconciler publishes its latest state
// again anyway, and a stale retained message resent late must not
// overwrite a newer one.
func (c *Client) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("mqtt: publish to %s: payload of %d bytes exceeds %d", topic, len(payload), MaxPayload)
	}
	if !c.pc.IsConnectionOpen() {
		return fmt.Errorf("mqtt: publish to %s: %w", topic, ErrNotConnected)
	}
	if err := wait(ctx, c.pc.Publish(topic, qos, retained, payload)); err != nil {
		return fmt.Errorf("mqtt: publish to %s: %w", topic, err)
	}
	return nil
}

// Subscribe subscribes to a topic filter and waits for the broker's answer.
// It fails with ErrSubscriptionRefused when the broker refuses (SUBACK
// 0x80, e.g. the ACL forbids the filter). h runs on the client's single
// delivery goroutine, in order: it must not block, and must not wait for
// a Publish of this client (hand work to another goroutine instead).
func (c *Client) Subscribe(ctx context.Context, topic string, qos byte, h func(topic string, payload []byte)) error {
	tok := c.pc.Subscribe(topic, qos, func(_ paho.Client, m paho.Message) {
		h(m.Topic(), m.Payload())
	})
	if err := wait(ctx, tok); err != nil {
		return fmt.Errorf("mqtt: subscribe to %s: %w", topic, err)
	}
	// One filter per SUBSCRIBE, so one result (paho keys it without a
	// $share/<group>/ prefix).
	for _, code := range tok.(*paho.SubscribeToken).Result() {
		if code == subackFailure || code > 2 { // 0, 1, 2: the granted QoS
			c.pc.Unsubscribe(topic) // drop the local route; the broker holds nothing
			return fmt.Errorf("mqtt: subscribe to %s: %w (code 0x%02x)", topic, ErrSubscriptionRefused, code)
		}
	}
	return nil
}

// Unsubscribe removes a subscription and its handler.
func (c *Client) Unsubscribe(ctx context.Context, topic string) error {
	if err := wait(ctx, c.pc.Unsubscribe(topic)); err != nil {
		return fmt.Errorf("mqtt: unsubscribe from %s: %w", topic, err)
	}
	return nil
}

// Connected reports whether the connection is up right now (false while
// it is being re-established).
func (c *Client) Connected() bool { return c.pc.IsConnectionOpen() }

// Close disconnects and stops reconnecting.
func (c *Client) Close() { c.pc.Disconnect(250) }

// noStore is a paho Store that keeps nothing, so that paho resends nothing
// after a reconnection. paho's own stores resend unacknowledged QoS 1/2
// publishes on every reconnection, and when it does so completes the
// original token without error; a publish the broker refuses by closing
// the connection (mochi does so for a forbidden topic) would then loop
// forever while reporting success.
type noStore struct{}

func (noStore) Open()                             {}
func (noStore) Put(string, packets.ControlPacket) {}
func (noStore) Get(string) packets.ControlPacket  { return nil }
func (noStore) All() []string                     { return nil }
func (noStore) Del(string)                        {}
func (noStore) Close()                            {}
func (noStore) Reset()                            {}

// tlsRefused reports whether err is a failed TLS verification of the
// broker (another CA than the pinned or given one, another name).
func tlsRefused(err error) bool {
	var verr *tls.CertificateVerificationError
	return errors.Is(err, pki.ErrPinMismatch) || errors.As(err, &verr)
}

// wait waits for a paho token or ctx.
func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// brokerURL checks a broker URL and maps the mqtt:// and mqtts:// aliases
// to the schemes paho knows.
func brokerURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("mqtt: broker url %q: %w", raw, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
		u.Scheme = "tcp"
	case "tls", "ssl", "mqtts":
		u.Scheme = "tls"
	default:
		return "", fmt.Errorf("mqtt: broker url %q: scheme must be tcp://, mqtt://, tls://, ssl:// or mqtts://", raw)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return "", fmt.Errorf("mqtt: broker url %q: want scheme://host:port", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("mqtt: broker url %q: unexpected path, query or user info (credentials go in Options)", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "thicket-" + hex.EncodeToString(b[:])
}
