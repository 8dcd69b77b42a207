package server

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/httpapi"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/install"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/store"
)

// TLSDir is the directory, in the data dir, of the CA the root makes at
// first start (ca.crt, ca.key).
const TLSDir = "tls"

// caValidity is the lifetime of the CA made at first start: the pin in
// every join token and client configuration depends on it.
const caValidity = 10 * 365 * 24 * time.Hour

// TLSConfig says how the root serves HTTPS.
type TLSConfig struct {
	// InsecurePlaintext serves plain HTTP (development only).
	InsecurePlaintext bool
	// CACert and CAKey are the operator's CA, which issues the serving
	// certificate; empty: the CA in <data-dir>/tls, made at first start.
	CACert, CAKey string
	// Cert and Key are a serving certificate the operator made (its chain
	// may follow it in Cert); CACert then names the CA that issued it and
	// CAKey stays empty.
	Cert, Key string
	// Names are more DNS names and addresses for the serving certificate
	// (e.g. a service name in a container network, a load balancer's).
	Names []string
}

// rootTLS is how the root serves HTTPS: its CA (served at /ca.crt, pinned
// in join tokens) and the server configuration.
type rootTLS struct {
	caPEM  []byte
	pin    string
	pool   *x509.CertPool
	config *tls.Config
	// signer signs the download manifest; nil without the CA's key.
	signer *install.Signer
	// ca issues cluster client certificates (nil: an operator's serving
	// certificate without its CA's key, which issues none).
	ca *pki.CA
}

// setupTLS loads or makes the root's CA and its serving certificate for
// the names other machines reach it by: the host of externalURL, the listen
// address (every address of this host when it listens on all) and
// localhost. It returns nil with InsecurePlaintext.
//
// On a store that replicas share (shared not nil) the CA made at first
// start is kept in the store, so that every replica serves with it; its
// certificate is written to <data-dir>/tls/ca.crt all the same.
func setupTLS(ctx context.Context, c TLSConfig, dataDir, externalURL string, listen net.Addr, shared *store.Store, log *slog.Logger) (*rootTLS, error) {
	if c.InsecurePlaintext {
		if c.CACert != "" || c.CAKey != "" || c.Cert != "" || c.Key != "" {
			return nil, errors.New("--insecure-plaintext and TLS files: choose one")
		}
		return nil, nil
	}
	if (c.Cert == "") != (c.Key == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if c.Cert != "" {
		return operatorCert(c)
	}
	var ca *pki.CA
	var err error
	switch {
	case c.CACert != "" && c.CAKey != "":
		ca, err = pki.LoadCA(c.CACert, c.CAKey)
	case c.CACert != "" || c.CAKey != "":
		return nil, errors.New("--tls-ca-cert and --tls-ca-key go together (or --tls-ca-cert with --tls-cert and --tls-key)")
	case shared != nil:
		ca, err = sharedCA(ctx, shared, filepath.Join(dataDir, TLSDir))
	default:
		ca, err = pki.LoadOrCreateCA(filepath.Join(dataDir, TLSDir), "thicket root CA", caValidity)
	}
	if err != nil {
		return nil, err
	}
	leaf := serverNames(externalURL, listen, c.Names)
	serving, err := pki.NewServing(ca, leaf)
	if err != nil {
		return nil, err
	}
	signer, err := downloadSigner(ctx, ca, shared, filepath.Join(dataDir, TLSDir, pki.SigningKeyFile))
	if err != nil {
		return nil, err
	}
	log.Info("serving HTTPS", "ca_pin", ca.Pin(), "names", leaf.DNSNames, "ips", leaf.IPs)
	// Clients may present a certificate of this CA (clusters do; browsers
	// and the CLI present none): the handshake verifies it, the API
	// matches it to the cluster calling (httpapi/clustercert.go).
	config := pki.VerifyClients(serving.TLSConfig(), ca, httpapi.ClusterCertRefused)
	return &rootTLS{caPEM: ca.PEM, pin: ca.Pin(), pool: ca.Pool(), config: config, signer: signer, ca: ca}, nil
}

// signingValidity is the lifetime of the download signing key's
// certificate, issued anew at every start.
const signingValidity = 365 * 24 * time.Hour

// downloadSigner loads or makes the Ed25519 key that signs the download
// manifest (in file, 0600, or in the store replicas share) and certifies
// it with the CA, so that the CA's pin also pins the key.
func downloadSigner(ctx context.Context, ca *pki.CA, shared *store.Store, file string) (*install.Signer, error) {
	var key ed25519.PrivateKey
	var err error
	if shared != nil {
		var keyPEM []byte
		keyPEM, err = shared.SharedSigningKey(ctx, func() ([]byte, error) {
			_, k, err := pki.NewSigningKey()
			return k, err
		})
		if err == nil {
			key, err = pki.ParseSigningKey(keyPEM)
		}
	} else {
		key, err = pki.LoadOrCreateSigningKey(file)
	}
	if err != nil {
		return nil, fmt.Errorf("download signing key: %w", err)
	}
	certPEM, err := ca.CertifySigningKey(key.Public().(ed25519.PublicKey), signingValidity)
	if err != nil {
		return nil, fmt.Errorf("download signing key: %w", err)
	}
	return &install.Signer{Key: key, CertPEM: certPEM}, nil
}

// sharedCA is the CA kept in the store, whose certificate is written to
// dir for users.
func sharedCA(ctx context.Context, st *store.Store, dir string) (*pki.CA, error) {
	certPEM, keyPEM, err := st.SharedCA(ctx, func() ([]byte, []byte, error) {
		ca, err := pki.NewCA("thicket root CA", caValidity)
		if err != nil {
			return nil, nil, err
		}
		key, err := ca.KeyPEM()
		return ca.PEM, key, err
	})
	if err != nil {
		return nil, err
	}
	ca, err := pki.ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, pki.CACertFile), ca.PEM, 0o644); err != nil {
		return nil, fmt.Errorf("write the CA certificate: %w", err)
	}
	return ca, nil
}

// operatorCert serves the operator's certificate, whose CA (--tls-ca-cert)
// must have issued it.
func operatorCert(c TLSConfig) (*rootTLS, error) {
	if c.CACert == "" || c.CAKey != "" {
		return nil, errors.New("--tls-cert and --tls-key need --tls-ca-cert, the CA that issued the certificate (and no --tls-ca-key)")
	}
	pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert, --tls-key: %w", err)
	}
	caPEM, err := os.ReadFile(c.CACert)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca-cert: %w", err)
	}
	block, _ := pem.Decode(caPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("--tls-ca-cert %s: no PEM certificate", c.CACert)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA {
		return nil, fmt.Errorf("--tls-ca-cert %s: not a CA certificate (%v)", c.CACert, err)
	}
	// The chain clients see ends with the CA, so that those that pin it find it.
	if last := pair.Certificate[len(pair.Certificate)-1]; string(last) != string(ca.Raw) {
		pair.Certificate = append(pair.Certificate, ca.Raw)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("--tls-cert: %w", err)
	}
	chain := []*x509.Certificate{leaf}
	for _, der := range pair.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert: %w", err)
		}
		chain = append(chain, c)
	}
	name := leaf.Subject.CommonName
	if len(leaf.DNSNames) > 0 {
		name = leaf.DNSNames[0]
	} else if len(leaf.IPAddresses) > 0 {
		name = leaf.IPAddresses[0].String()
	}
	if err := pki.VerifyPinned(chain, pki.Pin(ca), name); err != nil {
		return nil, fmt.Errorf("--tls-cert is not a server certificate issued by --tls-ca-cert: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &rootTLS{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), pin: pki.Pin(ca), pool: pool,
		config: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}}, nil
}

// serverNames are the names and addresses the serving certificate is for.
func serverNames(externalURL string, listen net.Addr, extra []string) pki.Leaf {
	l := pki.Leaf{Name: "thicket-root", Server: true, DNSNames: []string{"localhost"}}
	seen := map[string]bool{"localhost": true}
	add := func(host string) {
		if host == "" || seen[host] {
			return
		}
		seen[host] = true
		if ip := net.ParseIP(host); ip != nil {
			l.IPs = append(l.IPs, ip)
		} else {
			l.DNSNames = append(l.DNSNames, host)
		}
	}
	if u, err := url.Parse(externalURL); err == nil && externalURL != "" {
		add(u.Hostname())
	}
	for _, n := range extra {
		add(strings.TrimSpace(n))
	}
	if h, err := os.Hostname(); err == nil {
		add(h)
	}
	add("127.0.0.1")
	add("::1")
	host, _, _ := net.SplitHostPort(listen.String())
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		add(ip.String())
		return l
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
			add(n.IP.String())
		}
	}
	return l
}

// caHandler serves the CA certificate at /ca.crt: public, it is how a user
// or an install script gets what to trust (after checking its pin).
func caHandler(caPEM []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ca.crt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(caPEM)
	})
}
