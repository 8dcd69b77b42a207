package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/internal/secretfile"
)

// TLSDir is the directory, in the data dir, of the cluster's own CA
// (ca.crt, ca.key), made at first start.
const TLSDir = "tls"

// Validity of the cluster's CA and of its listeners' certificate (issued
// again at every start, and before it expires while the cluster runs).
const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 365 * 24 * time.Hour
	renewBefore    = 30 * 24 * time.Hour
)

// clusterCA is the cluster's CA: the operator's files, or the one in
// <data-dir>/tls, made at first start.
func clusterCA(cfg Config) (*pki.CA, error) {
	switch {
	case cfg.CACertFile != "" && cfg.CAKeyFile != "":
		return pki.LoadCA(cfg.CACertFile, cfg.CAKeyFile)
	case cfg.CACertFile != "" || cfg.CAKeyFile != "":
		return nil, fmt.Errorf("--ca-cert-file and --ca-key-file go together")
	}
	return pki.LoadOrCreateCA(filepath.Join(cfg.DataDir, TLSDir), "thicket-cluster "+cfg.Name+" CA", caValidity)
}

// serverNames are the names and addresses the node API and the embedded
// broker answer to: the advertised address, the listen addresses, every
// address of this host, its name and localhost, and --tls-san.
func serverNames(cfg Config) (dns []string, ips []net.IP) {
	seen := map[string]bool{}
	add := func(h string) {
		h = strings.Trim(strings.TrimSpace(h), "[]")
		if h == "" || seen[h] {
			return
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() {
				ips = append(ips, ip)
			}
			return
		}
		dns = append(dns, h)
	}
	add(cfg.AdvertiseAddr)
	for _, l := range []string{cfg.Listen, cfg.MQTTListen} {
		if h, _, err := net.SplitHostPort(l); err == nil {
			add(h)
		}
	}
	for _, s := range cfg.TLSSANs {
		add(s)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				add(n.IP.String())
			}
		}
	}
	if h, err := os.Hostname(); err == nil {
		add(h)
	}
	add("localhost")
	add("127.0.0.1")
	add("::1")
	return dns, ips
}

// serverCert issues the listeners' certificate, and again when it nears
// its end, so that a cluster that runs for a year keeps serving.
type serverCert struct {
	ca   *pki.CA
	leaf pki.Leaf
	mu   sync.Mutex
	cert tls.Certificate
}

func newServerCert(ca *pki.CA, cfg Config) (*serverCert, error) {
	dns, ips := serverNames(cfg)
	s := &serverCert{ca: ca, leaf: pki.Leaf{Name: "thicket-cluster " + cfg.Name, DNSNames: dns, IPs: ips, Server: true, Validity: serverValidity}}
	if _, err := s.get(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *serverCert) get() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert.Leaf == nil || time.Until(s.cert.Leaf.NotAfter) < renewBefore {
		c, err := s.ca.Issue(s.leaf)
		if err != nil {
			return nil, err
		}
		s.cert = c
	}
	return &s.cert, nil
}

// config is the servers' TLS configuration.
func (s *serverCert) config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.get() },
	}
}

// nodeJoinToken returns the token nodes register with, in thk1 form with
// the pin of the cluster's CA (pin "" in plain-text mode: the bare
// secret). It is the configured token, or the one in the data dir (made
// on first start). The file in the data dir always holds it with the
// current pin (rewritten when it has none or another, e.g. an operator's
// new CA), so that the file is what a node needs.
func nodeJoinToken(cfg Config, pin string) (string, error) {
	file := filepath.Join(cfg.DataDir, NodeJoinTokenFile)
	if cfg.NodeJoinToken != "" {
		// The operator's secret; the file in the data dir gets it with the
		// pin, as nodes need it (the operator may not know the pin).
		full, err := withPin(cfg.NodeJoinToken, pin)
		if err != nil || pin == "" {
			return full, err
		}
		if old, err := secretfile.Read(file); err == nil && old == full {
			return full, nil
		}
		return full, writeSecret(file, full)
	}
	// A new file is written in its final form at once: a script that waits
	// for it must not read it before the pin is in.
	prefix := "thn_"
	if pin != "" {
		var err error
		if prefix, err = pki.JoinToken(pin, prefix); err != nil {
			return "", err
		}
	}
	raw, err := secretfile.LoadOrCreate(file, prefix)
	if err != nil {
		return "", err
	}
	if pin == "" {
		return raw, nil
	}
	full, err := withPin(raw, pin)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	if full != raw {
		return full, writeSecret(file, full)
	}
	return full, nil
}

// writeSecret writes a secret to file (0600, atomically).
func writeSecret(file, secret string) error {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

// withPin puts pin into tok in place of any pin it had (pin "": tok as
// it is).
func withPin(tok, pin string) (string, error) {
	if pin == "" {
		return tok, nil
	}
	_, secret, err := pki.ParseJoinToken(tok)
	if err != nil {
		return "", err
	}
	return pki.JoinToken(pin, secret)
}

// warnPlaintext says, at every start, what --insecure-plaintext leaves
// open.
func warnPlaintext(log *slog.Logger) {
	log.Warn("INSECURE: --insecure-plaintext: the node API and the MQTT broker serve plain HTTP and MQTT; " +
		"join tokens, MQTT passwords and desired sets (with their environment variables) cross the network in clear " +
		"and nodes cannot tell this cluster from a man in the middle. For development only.")
}

// externalBrokerTLS is how the cluster's own client verifies an external
// broker at mqttURL (credentials split off), and the CA PEM nodes get for
// it: --mqtt-ca-file for an mqtts:// broker (nil and "" without it: the
// system's roots); a plain broker only with --insecure-plaintext.
func externalBrokerTLS(mqttURL string, cfg Config) (*tls.Config, string, error) {
	u, err := url.Parse(mqttURL)
	if err != nil {
		return nil, "", fmt.Errorf("MQTT URL: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "mqtts", "tls", "ssl":
	default:
		if !cfg.InsecurePlaintext {
			return nil, "", fmt.Errorf("--mqtt-url %s://…: a plain broker would carry nodes' passwords and desired sets in clear: use mqtts:// (with --mqtt-ca-file), or --insecure-plaintext for development", u.Scheme)
		}
		if cfg.MQTTCAFile != "" {
			return nil, "", errors.New("--mqtt-ca-file is for an mqtts:// broker")
		}
		return nil, "", nil
	}
	if cfg.MQTTCAFile == "" {
		return nil, "", nil
	}
	pemData, err := os.ReadFile(cfg.MQTTCAFile)
	if err != nil {
		return nil, "", fmt.Errorf("--mqtt-ca-file: %w", err)
	}
	tc, err := pki.CAClient(pemData, u.Hostname())
	if err != nil {
		return nil, "", fmt.Errorf("--mqtt-ca-file %s: %w", cfg.MQTTCAFile, err)
	}
	return tc, string(pemData), nil
}
