package broker

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/mqttc"
	"github.com/thicket-edge/thicket/internal/pki"
)

// Authenticator decides who may connect. The cluster manager implements it
// over its node registry.
type Authenticator interface {
	// Authenticate returns the principal for a username/password and the
	// client certificate the client presented over TLS (verified by the
	// listener's TLS configuration; nil: none, or a plain listener), or
	// ok=false.
	Authenticate(username string, password []byte, cert *x509.Certificate) (p Principal, ok bool)
}

// Principal is an authenticated MQTT client.
type Principal struct {
	// NodeID is the node this client speaks for. A node's MQTT username is
	// its node ID and its client ID mqttc.NodeClientID(NodeID).
	NodeID string
	// Manager marks the cluster manager's own client: it may read and write
	// every topic under "thicket/".
	Manager bool
}

// managerPrefix is the root of Thicket's topics; the manager may use all of
// them ("thicket/#"), nodes only their own two.
const managerPrefix = "thicket/"

// session is what the hook remembers about one connected (or persisted)
// client: its principal and, for a node, the two topics it may use,
// computed once at connect so that ACL checks only compare strings.
type session struct {
	cl      *mqtt.Client
	p       Principal
	desired string // the only filter/topic a node may read
	report  string // the only topic a node may write
}

// allowed is the whole ACL.
func (s *session) allowed(topic string, write bool) bool {
	if s.p.Manager {
		return topic == "thicket" || strings.HasPrefix(topic, managerPrefix)
	}
	if write {
		return topic == s.report
	}
	// Subscriptions must name the desired topic exactly: mochi passes the
	// subscription filter here, and for deliveries the concrete topic.
	return topic == s.desired
}

// authHook authenticates clients and enforces the topic ACL. mochi calls
// OnACLCheck for every inbound PUBLISH (write=true), for every SUBSCRIBE
// filter and again for every delivery to a subscriber, including retained
// messages (write=false), so it must not allocate.
type authHook struct {
	mqtt.HookBase
	auth Authenticator
	log  *slog.Logger

	mu       sync.RWMutex
	sessions map[string]*session // by client ID
}

func newAuthHook(auth Authenticator, log *slog.Logger) *authHook {
	return &authHook{auth: auth, log: log, sessions: make(map[string]*session)}
}

func (h *authHook) ID() string { return "thicket-auth" }

// Provides is asked by mochi before every hook call, so it is a plain switch.
func (h *authHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnDisconnect, mqtt.OnClientExpired:
		return true
	}
	return false
}

// validNodeID refuses IDs that would turn a node's exact topics into
// wildcards or add topic levels.
func validNodeID(id string) bool {
	return id != "" && !strings.ContainsAny(id, "/+#\x00")
}

// OnConnectAuthenticate refuses anonymous clients and wrong credentials,
// requires a node's client ID to be mqttc.NodeClientID (so that one node
// cannot take over another's session) and refuses a Will on a topic the client
// may not publish to (mochi does not ACL-check Wills).
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	if !pk.Connect.UsernameFlag || user == "" {
		h.log.Info("mqtt connect refused: anonymous", "client", cl.ID, "remote", cl.Net.Remote)
		return false
	}
	p, ok := h.auth.Authenticate(user, pk.Connect.Password, peerCert(cl))
	if !ok {
		h.log.Info("mqtt connect refused: bad credentials", "username", user, "remote", cl.Net.Remote)
		return false
	}
	s := &session{cl: cl, p: p}
	if !p.Manager {
		if !validNodeID(p.NodeID) {
			h.log.Warn("mqtt connect refused: invalid node id", "username", user, "node", p.NodeID)
			return false
		}
		if cl.ID != mqttc.NodeClientID(p.NodeID) {
			h.log.Warn("mqtt connect refused: a node's client id must be mqttc.NodeClientID(node id)",
				"node", p.NodeID, "client", cl.ID, "want", mqttc.NodeClientID(p.NodeID), "remote", cl.Net.Remote)
			return false
		}
		s.desired = wire.DesiredTopic(p.NodeID)
		s.report = wire.ReportTopic(p.NodeID)
	}
	if pk.Connect.WillFlag && !s.allowed(pk.Connect.WillTopic, true) {
		h.log.Warn("mqtt connect refused: will on a forbidden topic",
			"client", cl.ID, "topic", pk.Connect.WillTopic)
		return false
	}

	h.mu.Lock()
	h.sessions[cl.ID] = s // replaces the session of a client taken over
	h.mu.Unlock()
	return true
}

// OnACLCheck allows a node to subscribe to and receive only its own desired
// topic and to publish only to its own report topic; the manager may use
// everything under "thicket/". Anything else is denied.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	h.mu.RLock()
	s := h.sessions[cl.ID]
	h.mu.RUnlock()
	if s == nil || s.cl != cl {
		return false
	}
	if s.allowed(topic, write) {
		return true
	}
	h.log.Warn("mqtt acl denied", "client", cl.ID, "topic", topic, "write", write)
	return false
}

// OnDisconnect forgets a client whose session ends with its connection. A
// persistent session keeps its principal (it may still receive queued
// messages) until it expires or its client reconnects.
func (h *authHook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	if expire {
		h.forget(cl)
	}
}

func (h *authHook) OnClientExpired(cl *mqtt.Client) { h.forget(cl) }

// forget removes cl's session unless a newer client with the same ID has
// replaced it already.
func (h *authHook) forget(cl *mqtt.Client) {
	h.mu.Lock()
	if s := h.sessions[cl.ID]; s != nil && s.cl == cl {
		delete(h.sessions, cl.ID)
	}
	h.mu.Unlock()
}

// peerCert is the certificate the client presented on a TLS listener (the
// handshake is complete: mochi has read the CONNECT packet through it).
func peerCert(cl *mqtt.Client) *x509.Certificate {
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok {
		return nil
	}
	cs := tc.ConnectionState()
	return pki.Peer(&cs)
}
