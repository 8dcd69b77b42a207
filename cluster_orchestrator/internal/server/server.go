// Package server assembles thicket-cluster: state store, MQTT broker
// (embedded or external), cluster manager, node API and the root link.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/broker"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/manager"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/nodeapi"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/nodecert"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/rootsync"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/metricsauth"
	"github.com/thicket-edge/thicket/internal/mqttc"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/internal/secretfile"
	"github.com/thicket-edge/thicket/mongodb"
)

// NodeJoinTokenFile is the file, in the data dir, that holds the token
// nodes register with (generated on first start).
const NodeJoinTokenFile = "node-join-token"

// Config is thicket-cluster's configuration.
type Config struct {
	Name      string
	Location  string
	RootURL   string
	JoinToken string
	// InsecurePlaintextRoot allows an http:// RootURL (development).
	InsecurePlaintextRoot bool
	Listen                string // node API
	MQTTListen            string // embedded broker
	MQTTURL               string // external broker; empty embeds one
	AdvertiseAddr         string // address nodes and the root use to reach this cluster
	DataDir               string
	MongoURL              string
	MongoDatabase         string
	NodeJoinToken         string
	// MetricsTokenFile holds the bearer token /metrics requires; empty:
	// <DataDir>/metrics-token, generated on first start.
	MetricsTokenFile string
	NodeGrace        time.Duration
	ReportEvery      time.Duration
	// Block sets the cluster's address block by hand (standalone); with a
	// root, the root assigns it.
	Block netip.Prefix
	// SubnetBits is the prefix length of node subnets.
	SubnetBits int
	// AcceptShrinkingSets: see manager.Config.
	AcceptShrinkingSets bool
	// InsecurePlaintext serves the node API and the embedded broker
	// without TLS (development only; logged at every start).
	InsecurePlaintext bool
	// CACertFile and CAKeyFile are the operator's CA for the node API and
	// the embedded broker; empty: <DataDir>/tls, made on first start.
	CACertFile, CAKeyFile string
	// TLSSANs are more names and addresses for the listeners' certificate
	// (e.g. the outside address of a cluster behind a port forward).
	TLSSANs []string
	// MQTTCAFile is the CA (PEM) that issued an external mqtts:// broker's
	// certificate: the cluster verifies the broker with it, and hands it
	// to nodes at registration.
	MQTTCAFile string
	// NodeCertTTL is the validity of nodes' client certificates (0:
	// nodecert.DefaultTTL).
	NodeCertTTL time.Duration
	// DrainTimeout: see manager.Config (0: its default, 2 minutes).
	DrainTimeout time.Duration
}

// Run starts the cluster manager and serves until ctx ends. ready, if set,
// gets the node API's address once it listens.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ready func(addr string)) error {
	if cfg.NodeGrace <= 0 || cfg.ReportEvery <= 0 || cfg.NodeGrace <= cfg.ReportEvery {
		return fmt.Errorf("node grace (%s) must be longer than the report interval (%s), and both positive", cfg.NodeGrace, cfg.ReportEvery)
	}
	if cfg.NodeCertTTL == 0 {
		cfg.NodeCertTTL = nodecert.DefaultTTL
	}
	if cfg.NodeCertTTL < nodecert.MinTTL {
		return fmt.Errorf("--node-cert-ttl %s: at least %s", cfg.NodeCertTTL, nodecert.MinTTL)
	}
	if cfg.DrainTimeout < 0 {
		return fmt.Errorf("--drain-timeout %s: must be positive", cfg.DrainTimeout)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	conn, err := mongodb.Open(ctx, mongodb.Options{URL: cfg.MongoURL, DataDir: cfg.DataDir, Logger: log})
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	db := conn.Client.Database(cfg.MongoDatabase)
	if err := conn.Collections(ctx, db, state.Collections...); err != nil {
		return err
	}
	st, err := state.New(ctx, db)
	if err != nil {
		return err
	}
	var certs *serverCert
	pin := ""
	if cfg.InsecurePlaintext {
		warnPlaintext(log)
	} else {
		ca, err := clusterCA(cfg)
		if err != nil {
			return err
		}
		if certs, err = newServerCert(ca, cfg); err != nil {
			return err
		}
		pin = ca.Pin()
		log.Info("node API and MQTT broker serve TLS with the cluster's CA; node join tokens carry its pin", "ca_pin", pin)
	}
	nodeToken, err := nodeJoinToken(cfg, pin)
	if err != nil {
		return err
	}
	tokens, err := nodeTokens(ctx, nodeToken, st)
	if err != nil {
		return err
	}
	metricsToken, err := metricsauth.Token(cfg.MetricsTokenFile, cfg.DataDir)
	if err != nil {
		return err
	}

	// The manager needs a publisher, the broker needs the manager for
	// authentication: the publisher is connected once the broker runs.
	pub := &publisher{}
	id, err := st.Identity(ctx)
	if err != nil {
		return err
	}
	m, err := manager.New(ctx, manager.Config{ClusterName: cfg.Name, Location: cfg.Location, Grace: cfg.NodeGrace, Tick: 500 * time.Millisecond,
		SubnetBits: cfg.SubnetBits, AcceptShrinkingSets: cfg.AcceptShrinkingSets, Fresh: id == nil, NodeCerts: certs != nil,
		DrainTimeout: cfg.DrainTimeout}, st, pub, log)
	if err != nil {
		return err
	}
	// Nodes' client certificates, issued by the cluster's CA (none in
	// plain-text mode).
	var issuer *nodecert.Issuer
	if certs != nil {
		issuer = &nodecert.Issuer{CA: certs.ca, Cluster: cfg.Name, TTL: cfg.NodeCertTTL, Nodes: m}
	}
	// The address block: by hand, or as the root gave it last time (so a
	// cluster restarted while the root is away still addresses new nodes).
	if cfg.Block.IsValid() {
		m.SetBlock(cfg.Block)
	} else if id != nil && len(id.AllBlocks()) > 0 {
		m.SetNetwork(id.ClusterID, id.AllBlocks(), wire.Network{})
	}

	var mqttURL, nodeMQTTURL, user, pass, nodeMQTTCA string
	var mqttTLS *tls.Config
	if cfg.MQTTURL == "" {
		mgrPass, err := randomSecret()
		if err != nil {
			return err
		}
		bc := broker.Config{Listen: cfg.MQTTListen, Auth: &authenticator{m: m, password: mgrPass, certs: issuer, log: log}, Logger: log}
		scheme := "tcp://"
		if certs != nil {
			bc.TLS, scheme = issuer.ServerTLS(certs.config(), "mqtt"), "mqtts://"
		}
		b, err := broker.New(bc)
		if err != nil {
			return err
		}
		if err := b.Start(); err != nil {
			return fmt.Errorf("start MQTT broker on %s: %w", cfg.MQTTListen, err)
		}
		defer b.Close()
		m.OnNodeDeleted(b.Disconnect)
		// The manager's own client dials the address the broker listens on
		// (a broker bound to one address of a multi-homed host does not
		// answer on 127.0.0.1).
		host, port, _ := net.SplitHostPort(b.Addr())
		mqttURL = scheme + net.JoinHostPort(dialHost(host), port)
		nodeMQTTURL = scheme + net.JoinHostPort(cfg.AdvertiseAddr, port)
		if certs != nil {
			mqttTLS = pki.PinnedClientNaming(pin, dialHost(host))
			nodeMQTTCA = string(certs.ca.PEM)
		}
		user, pass = managerUser, mgrPass
		log.Info("embedded MQTT broker listening", "addr", b.Addr())
	} else {
		// With an external broker, authentication and topic ACLs are the
		// broker's: nodes get its address, without the manager's credentials.
		if mqttURL, user, pass, err = splitCredentials(cfg.MQTTURL); err != nil {
			return err
		}
		if mqttTLS, nodeMQTTCA, err = externalBrokerTLS(mqttURL, cfg); err != nil {
			return err
		}
		nodeMQTTURL = mqttURL
	}
	client, err := mqttc.Connect(ctx, mqttc.Options{
		URL: mqttURL, TLS: mqttTLS, ClientID: "thicket-cluster-" + cfg.Name, Username: user, Password: pass, Logger: log,
		OnConnect: func(c *mqttc.Client) {
			err := c.Subscribe(ctx, "thicket/node/+/report", 0, func(topic string, payload []byte) {
				var r wire.NodeReport
				if err := json.Unmarshal(payload, &r); err != nil || r.Version != wire.Version {
					log.Warn("dropping malformed node report", "topic", topic, "err", err)
					return
				}
				// Only a node's own topic counts for it.
				if topic != wire.ReportTopic(r.NodeID) {
					log.Warn("dropping node report on a foreign topic", "topic", topic, "node", r.NodeID)
					return
				}
				m.HandleReport(r)
			})
			if err != nil {
				log.Error("subscribe to node reports", "err", err)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("connect to MQTT broker: %w", err)
	}
	defer client.Close()
	pub.c = client

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	hs := &http.Server{
		Handler: nodeapi.Handler(nodeapi.Config{JoinToken: nodeToken, Metrics: metricsauth.Handler(metricsToken), MQTTURL: nodeMQTTURL,
			MQTTCAPEM: nodeMQTTCA, ReportInterval: cfg.ReportEvery, Certs: issuer, Tokens: tokens}, m, log),
		ReadHeaderTimeout: 10 * time.Second,
		// A node that fails to verify this server closes the handshake:
		// the node logs why, the cluster need not.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	if certs != nil {
		ln = tls.NewListener(ln, issuer.ServerTLS(certs.config(), "api"))
	}
	go func() { errc <- hs.Serve(ln) }()
	managed := make(chan struct{})
	go func() { m.Run(ctx); close(managed) }()
	if cfg.RootURL != "" {
		port := ln.Addr().(*net.TCPAddr).Port
		link, err := rootsync.New(ctx, rootsync.Config{
			RootURL: cfg.RootURL, JoinToken: cfg.JoinToken, Interval: time.Second, AllowPlaintext: cfg.InsecurePlaintextRoot,
			NodeTokens: tokens, CAPin: pin, ClientCertFile: filepath.Join(cfg.DataDir, rootsync.ClientCertFile),
			Register: wire.ClusterRegisterRequest{Name: cfg.Name, Location: cfg.Location, Address: cfg.AdvertiseAddr, Port: port},
		}, st, m, log)
		if err != nil {
			_ = hs.Close()
			return fmt.Errorf("the link to the root: %w", err)
		}
		m.OnChange(link.Kick)
		go link.Run(ctx)
	} else {
		log.Warn("no --root-url: running as a standalone cluster")
	}
	log.Info("thicket-cluster running", "name", cfg.Name, "node_api", ln.Addr().String(), "tls", certs != nil, "mqtt_for_nodes", nodeMQTTURL, "data_dir", cfg.DataDir)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	select { // the manager writes what waited (statuses) before the store closes
	case <-managed:
	case <-sctx.Done():
	}
	log.Info("thicket-cluster stopped")
	return nil
}

const managerUser = "thicket-cluster-manager"

// authenticator admits the cluster manager's own client and registered
// nodes, each with its own password and, for a node that registered with
// a certificate request, its client certificate (both factors: see the
// README's "Node identities").
type authenticator struct {
	m        *manager.Manager
	password string
	certs    *nodecert.Issuer // nil: plain text, no certificates
	log      *slog.Logger
}

func (a *authenticator) Authenticate(username string, password []byte, cert *x509.Certificate) (broker.Principal, bool) {
	if username == managerUser {
		return broker.Principal{Manager: true}, cert == nil && secretfile.Equal(string(password), a.password)
	}
	if !a.m.CheckNodePassword(username, password) {
		return broker.Principal{}, false
	}
	if a.certs != nil {
		if err := a.certs.Check(username, cert, "mqtt"); err != nil {
			a.log.Warn("mqtt connect refused", "username", username, "err", err)
			return broker.Principal{}, false
		}
	}
	return broker.Principal{NodeID: username}, true
}

// publisher sends desired sets as retained messages.
type publisher struct{ c *mqttc.Client }

func (p *publisher) PublishDesired(ctx context.Context, nodeID string, d wire.NodeDesired) error {
	if p.c == nil {
		return errors.New("not connected to the broker yet")
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return p.c.Publish(pctx, wire.DesiredTopic(nodeID), 1, true, b)
}

func randomSecret() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// splitCredentials separates the user and password of a broker URL like
// tcp://user:pass@host:port from the address.
func splitCredentials(raw string) (addr, user, pass string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", fmt.Errorf("MQTT URL %q: %w", raw, err)
	}
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	return u.String(), user, pass, nil
}

// dialHost is the host to dial for a listener bound to host: 127.0.0.1 for
// the unspecified address (Go's "tcp" listeners on [::] are dual-stack),
// the address itself otherwise.
func dialHost(host string) string {
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		return "127.0.0.1"
	}
	return host
}
