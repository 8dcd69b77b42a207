// Command thicket-cluster is a Thicket cluster orchestrator: it joins a
// root, runs the cluster's MQTT broker and scheduler, and keeps the
// cluster's worker nodes running what the root asks of it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/server"
	"github.com/thicket-edge/thicket/internal/geo"
	"github.com/thicket-edge/thicket/internal/netaddr"
	"github.com/thicket-edge/thicket/internal/pprofserve"
	"github.com/thicket-edge/thicket/internal/secretfile"
)

type cli struct {
	Name          string        `env:"THICKET_CLUSTER_NAME" help:"Unique name of this cluster (default: the host name)."`
	Location      string        `env:"THICKET_CLUSTER_LOCATION" help:"Where the cluster is: \"lat,long\" in degrees (a third field, a radius, is ignored) or a site name; its nodes without a --location of their own are there for geo constraints. Other text is kept but does not count as a location."`
	RootURL       string        `env:"THICKET_ROOT_URL" help:"URL of thicket-root, e.g. https://root:10000; the root must show a certificate of the CA the join token pins. Empty runs a standalone cluster."`
	PlaintextRoot bool          `name:"insecure-plaintext-root" env:"THICKET_INSECURE_PLAINTEXT_ROOT" help:"Allow an http:// --root-url (a root started with --insecure-plaintext, and a token without a pin): development only, the credential and desired sets cross the network in clear."`
	JoinToken     string        `env:"THICKET_JOIN_TOKEN" help:"Cluster join token from the root (<root data-dir>/cluster-join-token); prefer --join-token-file."`
	JoinTokenFile string        `name:"join-token-file" env:"THICKET_JOIN_TOKEN_FILE" help:"File holding the cluster join token, read at start (waiting until it exists), e.g. the root's cluster-join-token on a shared volume."`
	Listen        string        `default:":10100" env:"THICKET_LISTEN" help:"Address of the node API (HTTPS: registration, /healthz, /metrics behind the metrics token)."`
	MetricsToken  string        `name:"metrics-token-file" env:"THICKET_METRICS_TOKEN_FILE" help:"File holding the bearer token /metrics requires (default: <data-dir>/metrics-token, generated on first start)."`
	MQTTListen    string        `name:"mqtt-listen" default:":10003" env:"THICKET_MQTT_LISTEN" help:"Address of the embedded MQTT broker."`
	MQTTURL       string        `name:"mqtt-url" env:"THICKET_MQTT_URL" help:"External MQTT broker, e.g. mqtts://user:pass@host:8883 (tcp:// only with --insecure-plaintext); empty embeds one. A URL with a password belongs in --mqtt-url-file."`
	MQTTURLFile   string        `name:"mqtt-url-file" env:"THICKET_MQTT_URL_FILE" help:"File holding the external MQTT broker's URL (keeps its credentials out of the process list)."`
	AdvertiseAddr string        `name:"advertise-address" env:"THICKET_ADVERTISE_ADDRESS" help:"Address nodes use to reach this cluster's broker (default: the first non-loopback IPv4 address); in its TLS certificate."`
	DataDir       string        `default:"/var/lib/thicket/cluster" env:"THICKET_DATA_DIR" help:"Directory for the embedded store, the cluster's CA (tls/) and the node join token."`
	MongoURL      string        `env:"THICKET_MONGO_URL" help:"MongoDB URL; empty starts the embedded store under --data-dir. A URL with a password belongs in --mongo-url-file."`
	MongoURLFile  string        `name:"mongo-url-file" env:"THICKET_MONGO_URL_FILE" help:"File holding the MongoDB URL (keeps its credentials out of the process list)."`
	MongoDatabase string        `default:"thicket_cluster" env:"THICKET_MONGO_DATABASE" help:"Database name."`
	NodeJoinToken string        `help:"The cluster's own token nodes register with (its bootstrap token; the root issues expiring node tokens too); empty uses <data-dir>/node-join-token, generated on first start and holding the pin of the cluster's CA. Prefer --node-join-token-file (not read from the environment)."`
	NodeTokenFile string        `name:"node-join-token-file" env:"THICKET_NODE_JOIN_TOKEN_FILE" help:"File holding the token nodes register with (instead of --node-join-token)."`
	NodeGrace     time.Duration `default:"3s" env:"THICKET_NODE_GRACE" help:"How long a node may be silent before it is lost: its instances become UNKNOWN, and are replaced as their services' disconnect policies say."`
	DrainTimeout  time.Duration `name:"drain-timeout" default:"2m" env:"THICKET_DRAIN_TIMEOUT" help:"How long a drained node's instance keeps running while its new copy on another node is not RUNNING yet; then it is stopped anyway, with an event saying so. Positive."`
	AcceptShrink  bool          `name:"accept-shrinking-sets" env:"THICKET_ACCEPT_SHRINKING_SETS" help:"Apply a desired set from the root even when it drops most of this cluster's instances without listing them as removed (by default they are held running: a root that lost its store cannot wipe the cluster)."`
	ReportEvery   time.Duration `name:"report-interval" default:"1s" env:"THICKET_REPORT_INTERVAL" help:"How often nodes report."`
	InstanceBlock string        `name:"instance-block" env:"THICKET_INSTANCE_BLOCK" help:"This cluster's block of instance addresses, e.g. 10.64.0.0/16; empty: assigned by the root."`
	SubnetBits    int           `name:"node-subnet-bits" default:"24" env:"THICKET_NODE_SUBNET_BITS" help:"Prefix length of each node's instance subnet (24: 250+ instances per node)."`
	LogLevel      slog.Level    `default:"info" env:"THICKET_LOG_LEVEL" help:"Log level: debug, info, warn, error."`
	tlsFlags
	pprofserve.Flag
}

// tlsFlags say how the node API and the MQTT broker are secured.
type tlsFlags struct {
	InsecurePlaintext bool          `name:"insecure-plaintext" env:"THICKET_INSECURE_PLAINTEXT" help:"Serve the node API and the embedded MQTT broker without TLS, and allow a plain external broker. Development only: tokens, MQTT passwords and desired sets cross the network in clear."`
	CACertFile        string        `name:"ca-cert-file" env:"THICKET_CA_CERT_FILE" help:"The cluster's CA certificate (PEM), with --ca-key-file (default: <data-dir>/tls/ca.crt, made on first start). Node join tokens carry its pin."`
	CAKeyFile         string        `name:"ca-key-file" env:"THICKET_CA_KEY_FILE" help:"The key of --ca-cert-file (PEM)."`
	TLSSAN            []string      `name:"tls-san" env:"THICKET_TLS_SANS" help:"More names or addresses nodes may dial this cluster at, for its certificate (repeatable; the advertised, listen and host addresses are in it already)."`
	NodeCertTTL       time.Duration `name:"node-cert-ttl" default:"168h" env:"THICKET_NODE_CERT_TTL" help:"Validity of the client certificate the cluster's CA issues each node (at registration; nodes renew at two thirds of it). At least 10s."`
	MQTTCAFile        string        `name:"mqtt-ca-file" env:"THICKET_MQTT_CA_FILE" help:"CA (PEM) that issued an external mqtts:// broker's certificate: the cluster verifies the broker with it and hands it to nodes at registration (default: the system's roots)."`
}

// nodeTokenEnv is the variable earlier versions took the node join token
// from: refused, so that a token set there is not silently ignored.
const nodeTokenEnv = "THICKET_NODE_JOIN_TOKEN"

func main() {
	var c cli
	kong.Parse(&c, kong.Description("Thicket cluster orchestrator: joins a root, schedules onto worker nodes over MQTT."))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	if _, err := geo.Parse(c.Location); err != nil {
		log.Warn("--location is not a location; it is shown as given but geo and latency constraints ignore it", "err", err)
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.AdvertiseAddr == "" {
		c.AdvertiseAddr = netaddr.FirstIPv4()
	}
	var block netip.Prefix
	if c.InstanceBlock != "" {
		var err error
		if block, err = netip.ParsePrefix(c.InstanceBlock); err != nil || !block.Addr().Is4() {
			log.Error("--instance-block must be an IPv4 prefix", "value", c.InstanceBlock)
			os.Exit(2)
		}
	}
	if err := c.check(); err != nil {
		log.Error(err.Error())
		os.Exit(2)
	}
	if _, err := pprofserve.Start(c.Pprof, log); err != nil {
		log.Error("thicket-cluster failed to start", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv(nodeTokenEnv) != "" {
		// Secrets stay out of the environment (docker inspect, /proc/PID/environ).
		log.Error(nodeTokenEnv + " is no longer read: put the token in a file (mode 0600) and give it as --node-join-token-file (THICKET_NODE_JOIN_TOKEN_FILE)")
		os.Exit(2)
	}
	if c.JoinToken != "" && c.JoinTokenFile != "" {
		log.Error("--join-token and --join-token-file: " + secretfile.ErrBoth.Error())
		os.Exit(2)
	}
	if c.JoinToken != "" {
		// Resolve only warns here: the file is read below, waiting for it.
		_, _ = secretfile.Flag{Name: "join-token", Env: "THICKET_JOIN_TOKEN", Value: c.JoinToken}.Resolve(log)
	}
	for _, f := range []struct {
		flag secretfile.Flag
		to   *string
		warn bool
	}{
		{secretfile.Flag{Name: "mqtt-url", Env: "THICKET_MQTT_URL", Value: c.MQTTURL, File: c.MQTTURLFile}, &c.MQTTURL, strings.Contains(c.MQTTURL, "@")},
		{secretfile.Flag{Name: "mongo-url", Env: "THICKET_MONGO_URL", Value: c.MongoURL, File: c.MongoURLFile}, &c.MongoURL, strings.Contains(c.MongoURL, "@")},
		{secretfile.Flag{Name: "node-join-token", Value: c.NodeJoinToken, File: c.NodeTokenFile}, &c.NodeJoinToken, true},
	} {
		l := log
		if !f.warn {
			l = nil
		}
		v, err := f.flag.Resolve(l)
		if err != nil {
			log.Error("thicket-cluster: a secret", "err", err)
			os.Exit(2)
		}
		*f.to = v
	}
	if c.JoinTokenFile != "" {
		tok, err := readTokenFile(ctx, c.JoinTokenFile, log)
		if ctx.Err() != nil {
			return // stopped while waiting
		}
		if err != nil {
			log.Error("--join-token-file", "err", err)
			os.Exit(2)
		}
		c.JoinToken = tok
	}
	if c.RootURL != "" && c.JoinToken == "" {
		log.Error("--root-url needs --join-token or --join-token-file (or THICKET_JOIN_TOKEN, THICKET_JOIN_TOKEN_FILE)")
		os.Exit(2)
	}
	err := server.Run(ctx, server.Config{
		Name: c.Name, Location: c.Location, RootURL: c.RootURL, JoinToken: c.JoinToken, InsecurePlaintextRoot: c.PlaintextRoot,
		Listen: c.Listen, MQTTListen: c.MQTTListen, MQTTURL: c.MQTTURL, AdvertiseAddr: c.AdvertiseAddr,
		DataDir: c.DataDir, MongoURL: c.MongoURL, MongoDatabase: c.MongoDatabase,
		NodeJoinToken: c.NodeJoinToken, MetricsTokenFile: c.MetricsToken, NodeGrace: c.NodeGrace, ReportEvery: c.ReportEvery,
		Block: block.Masked(), SubnetBits: c.SubnetBits, AcceptShrinkingSets: c.AcceptShrink,
		InsecurePlaintext: c.InsecurePlaintext, CACertFile: c.CACertFile, CAKeyFile: c.CAKeyFile, TLSSANs: c.TLSSAN, MQTTCAFile: c.MQTTCAFile,
		NodeCertTTL: c.NodeCertTTL, DrainTimeout: c.DrainTimeout,
	}, log, nil)
	if err != nil {
		log.Error("thicket-cluster failed", "err", err)
		os.Exit(1)
	}
}

// readTokenFile returns the trimmed content of path, waiting until the file
// exists and is not empty: a root started at the same time (docker compose)
// writes it on its first start.
func readTokenFile(ctx context.Context, path string, log *slog.Logger) (string, error) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for waited := time.Duration(0); ; waited += 500 * time.Millisecond {
		b, err := os.ReadFile(path)
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if waited%(30*time.Second) == 0 {
			// Normal for a moment beside a root that starts too; a wait that
			// lasts is a warning (the root did not start?).
			level := slog.LevelInfo
			if waited > 0 {
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "waiting for the join token file", "file", path, "waiting", waited)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
	}
}

// check refuses numbers out of their range.
func (c *cli) check() error {
	if c.SubnetBits < 16 || c.SubnetBits > 29 {
		return fmt.Errorf("--node-subnet-bits must be between 16 and 29, not %d", c.SubnetBits)
	}
	if c.DrainTimeout <= 0 {
		return fmt.Errorf("--drain-timeout must be a positive duration (e.g. 2m, 30s), not %s", c.DrainTimeout)
	}
	return nil
}
