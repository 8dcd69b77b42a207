// Command thicket-root is Thicket's root orchestrator: the system manager
// REST API that holds applications and delegates them to clusters.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/internal/pprofserve"
	"github.com/thicket-edge/thicket/internal/secretfile"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/server"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

type cli struct {
	Listen        string        `default:":10000" env:"THICKET_LISTEN" help:"Address of the REST API and dashboard."`
	DataDir       string        `default:"/var/lib/thicket/root" env:"THICKET_DATA_DIR" help:"Directory for the embedded store, generated credentials and state."`
	MongoURL      string        `env:"THICKET_MONGO_URL" help:"MongoDB URL; empty starts the embedded store under --data-dir. A URL with a password belongs in --mongo-url-file."`
	MongoURLFile  string        `name:"mongo-url-file" env:"THICKET_MONGO_URL_FILE" help:"File holding the MongoDB URL (keeps its credentials out of the process list)."`
	MongoDatabase string        `default:"thicket_root" env:"THICKET_MONGO_DATABASE" help:"Database name."`
	AccessTTL     time.Duration `default:"15m" env:"THICKET_ACCESS_TTL" help:"Lifetime of access tokens."`
	RefreshTTL    time.Duration `default:"168h" env:"THICKET_REFRESH_TTL" help:"Lifetime of refresh tokens."`
	ClusterGrace  time.Duration `default:"30s" env:"THICKET_CLUSTER_GRACE" help:"How long a cluster may be silent before it is lost: its instances become UNKNOWN, and are replaced as their services' disconnect policies say."`
	InstanceNet   string        `name:"instance-network" default:"10.64.0.0/10" env:"THICKET_INSTANCE_NETWORK" help:"Network of instance addresses, split among clusters."`
	BlockBits     int           `name:"cluster-block-bits" default:"16" env:"THICKET_CLUSTER_BLOCK_BITS" help:"Prefix length of each cluster's block of the instance network."`
	LogLevel      slog.Level    `default:"info" env:"THICKET_LOG_LEVEL" help:"Log level: debug, info, warn, error."`
	DownloadsDir  string        `name:"downloads-dir" env:"THICKET_DOWNLOADS_DIR" help:"Directory of the binaries served at /download/ (<binary>-<os>-<arch>, or a plain <binary> for this machine's platform); default: the directory of this executable."`
	ExternalURL   string        `name:"external-url" env:"THICKET_EXTERNAL_URL" help:"This root's URL as other machines reach it, written into /install/*.sh; default: from each request's Host."`
	MetricsToken  string        `name:"metrics-token-file" env:"THICKET_METRICS_TOKEN_FILE" help:"File holding the bearer token /metrics requires (default: <data-dir>/metrics-token, generated on first start)."`
	AdminPwFile   string        `name:"admin-password-file" env:"THICKET_ADMIN_PASSWORD_FILE" help:"File holding the Admin's first password (instead of $THICKET_ADMIN_PASSWORD)."`
	ResetAdmin    bool          `name:"reset-admin-password" help:"Give the Admin account a new password (from --admin-password-file or $THICKET_ADMIN_PASSWORD, or random into <data-dir>/admin-password) and the admin role, then serve as usual."`
	RotateKey     bool          `name:"rotate-signing-key" help:"Make a new current token signing key, then serve as usual; tokens signed with earlier keys stay valid until they expire (as POST /api/auth/keys/rotate)."`
	JobsAllowNet  []string      `name:"jobs-allow-net" sep:"," env:"THICKET_JOBS_ALLOW_NET" placeholder:"CIDR" help:"Non-public networks a job list URL ({\"url\": ...} on /api/service/{id}/jobs) may be fetched from, e.g. 10.0.0.0/8; default none: public addresses only."`
	TrustedProxy  []string      `name:"trusted-proxies" sep:"," env:"THICKET_TRUSTED_PROXIES" placeholder:"CIDR" help:"Reverse proxies (addresses or prefixes) whose X-Forwarded-For header names the client's address for the login rate limits; default none: the header is ignored."`
	TLSCACert     string        `name:"tls-ca-cert" env:"THICKET_TLS_CA_CERT" help:"The operator's CA certificate (PEM): with --tls-ca-key it issues the serving certificate; with --tls-cert it is the CA that issued that one. Default: the CA in <data-dir>/tls, made at first start. Served at /ca.crt; join tokens carry its pin."`
	TLSCAKey      string        `name:"tls-ca-key" env:"THICKET_TLS_CA_KEY" help:"Key of --tls-ca-cert (PEM)."`
	TLSCert       string        `name:"tls-cert" env:"THICKET_TLS_CERT" help:"A serving certificate the operator made (PEM, its chain may follow), issued by --tls-ca-cert; default: one issued at each start for --external-url's host, the listen addresses and localhost."`
	TLSKey        string        `name:"tls-key" env:"THICKET_TLS_KEY" help:"Key of --tls-cert (PEM)."`
	TLSNames      []string      `name:"tls-names" sep:"," env:"THICKET_TLS_NAMES" placeholder:"NAME" help:"More DNS names and IP addresses for the serving certificate it issues (e.g. a container service name, a load balancer's name)."`
	ClusterCert   time.Duration `name:"cluster-cert-ttl" default:"720h" env:"THICKET_CLUSTER_CERT_TTL" help:"Validity of the client certificates the root's CA issues clusters at registration and renewal (at least 10s); clusters renew at two thirds of it. A root on --tls-cert without its CA's key issues none."`
	Plaintext     bool          `name:"insecure-plaintext" env:"THICKET_INSECURE_PLAINTEXT" help:"Serve plain HTTP instead of HTTPS (development only: passwords and tokens cross the network in clear; logged as a warning at every start)."`
	pprofserve.Flag
}

func main() {
	var c cli
	kong.Parse(&c, kong.Description("Thicket root orchestrator: REST API, applications and clusters.\n\n"+
		"On first start the user Admin is created with the password from --admin-password-file, $"+server.AdminPasswordEnv+
		" or a random one written to <data-dir>/"+server.AdminPasswordFile+"."))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	instanceNet, err := netip.ParsePrefix(c.InstanceNet)
	if err != nil || !instanceNet.Addr().Is4() || c.BlockBits < instanceNet.Bits() || c.BlockBits > 28 || instanceNet.Overlaps(sla.ServiceNetwork) {
		log.Error("--instance-network must be an IPv4 prefix apart from the service network "+sla.ServiceNetwork.String()+
			", and --cluster-block-bits between its length and 28",
			"instance_network", c.InstanceNet, "cluster_block_bits", c.BlockBits)
		os.Exit(2)
	}
	mongoURL, adminPassword, err := secrets(c, log)
	if err != nil {
		log.Error("thicket-root: a secret", "err", err)
		os.Exit(2)
	}
	proxies, err := parsePrefixes(c.TrustedProxy)
	if err != nil {
		log.Error("--trusted-proxies: " + err.Error())
		os.Exit(2)
	}
	jobsNets, err := parsePrefixes(c.JobsAllowNet)
	if err != nil {
		log.Error("--jobs-allow-net: " + err.Error())
		os.Exit(2)
	}
	if _, err := pprofserve.Start(c.Pprof, log); err != nil {
		log.Error("thicket-root failed to start", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = server.Run(ctx, server.Config{
		Listen:             c.Listen,
		DataDir:            c.DataDir,
		MongoURL:           mongoURL,
		MongoDatabase:      c.MongoDatabase,
		AccessTTL:          c.AccessTTL,
		RefreshTTL:         c.RefreshTTL,
		ClusterGrace:       c.ClusterGrace,
		AddressPlan:        state.AddressPlan{Network: instanceNet.Masked(), BlockBits: c.BlockBits},
		AdminPassword:      adminPassword,
		ResetAdminPassword: c.ResetAdmin,
		RotateSigningKey:   c.RotateKey,
		TrustedProxies:     proxies,
		JobsAllowNet:       jobsNets,
		DownloadsDir:       c.DownloadsDir,
		ExternalURL:        c.ExternalURL,
		MetricsTokenFile:   c.MetricsToken,
		TLS: server.TLSConfig{InsecurePlaintext: c.Plaintext, CACert: c.TLSCACert, CAKey: c.TLSCAKey,
			Cert: c.TLSCert, Key: c.TLSKey, Names: c.TLSNames},
		ClusterCertTTL: c.ClusterCert,
	}, log, nil)
	if err != nil {
		log.Error("thicket-root failed", "err", err)
		os.Exit(1)
	}
}

// secrets resolves the MongoDB URL and the Admin's first password from
// their flags, environment variables or files.
func secrets(c cli, log *slog.Logger) (mongoURL, adminPassword string, err error) {
	mongo := secretfile.Flag{Name: "mongo-url", Env: "THICKET_MONGO_URL", Value: c.MongoURL, File: c.MongoURLFile}
	if !strings.Contains(c.MongoURL, "@") {
		log = nil // no credentials in it: nothing to warn about
	}
	if mongoURL, err = mongo.Resolve(log); err != nil {
		return "", "", err
	}
	adminPassword = os.Getenv(server.AdminPasswordEnv)
	if c.AdminPwFile != "" {
		if adminPassword != "" {
			return "", "", fmt.Errorf("$%s and --admin-password-file: %w", server.AdminPasswordEnv, secretfile.ErrBoth)
		}
		if adminPassword, err = secretfile.Read(c.AdminPwFile); err != nil {
			return "", "", fmt.Errorf("--admin-password-file: %w", err)
		}
	}
	return mongoURL, adminPassword, nil
}

// parsePrefixes reads addresses and prefixes ("10.0.0.1", "10.0.0.0/8").
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if s == "" {
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is no address or prefix", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
