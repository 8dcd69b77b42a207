package testharness

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/pki"
)

// CAFile is the root's CA certificate (PEM), which it makes in its data dir
// at first start; "" for a root serving plain HTTP.
func (r *Root) CAFile() string {
	if r.opts.Plaintext {
		return ""
	}
	if r.opts.CAFile != "" {
		return r.opts.CAFile
	}
	return filepath.Join(r.DataDir, "tls", pki.CACertFile)
}

// Pin is the pin of the root's CA ("sha256:<hex>").
func (r *Root) Pin() (string, error) {
	ca, err := r.caCert()
	if err != nil {
		return "", err
	}
	return pki.Pin(ca), nil
}

func (r *Root) caCert() (*x509.Certificate, error) {
	if r.opts.Plaintext {
		return nil, errors.New("the root serves plain HTTP")
	}
	b, err := os.ReadFile(r.CAFile())
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM certificate", r.CAFile())
	}
	return x509.ParseCertificate(block.Bytes)
}

// TLSConfig trusts the root's CA only (nil for a root serving plain HTTP).
func (r *Root) TLSConfig() (*tls.Config, error) {
	if r.opts.Plaintext {
		return nil, nil
	}
	ca, err := r.caCert()
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

// HTTPClient is an HTTP client that trusts the root's CA (and no other).
func (r *Root) HTTPClient() *http.Client {
	c := &http.Client{Timeout: 30 * time.Second}
	tc, err := r.TLSConfig()
	if err != nil {
		// A client that fails every HTTPS request: nothing trusts a root
		// whose CA cannot be read.
		tc = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: x509.NewCertPool()}
	}
	if tc != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tc
		c.Transport = t
	}
	return c
}

// API is a client of the root's REST API that trusts its CA: cfg's
// Address and CAFile are set.
func (r *Root) API(cfg api.Config) *api.Client {
	cfg.Address = r.URL
	cfg.CAFile = r.CAFile()
	return api.NewClient(cfg)
}

// LeafSPKI is the base64 SHA-256 of the public key of the certificate the
// root serves, as Chromium's --ignore-certificate-errors-spki-list takes
// it: a browser told to trust exactly that key.
func (r *Root) LeafSPKI(ctx context.Context) (string, error) {
	u, err := url.Parse(r.URL)
	if err != nil {
		return "", err
	}
	tc, err := r.TLSConfig()
	if err != nil || tc == nil {
		return "", fmt.Errorf("the root's TLS: %w", err)
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: tc}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	leaf := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// scheme is the root's URL scheme.
func (r *Root) scheme() string {
	if r.opts.Plaintext {
		return "http://"
	}
	return "https://"
}

// plaintextArgs are the flags of a root serving plain HTTP (none by
// default), and of the clusters joined to it.
func (r *Root) plaintextArgs() []string {
	if r.opts.Plaintext {
		return []string{"--insecure-plaintext"}
	}
	return nil
}

func (r *Root) clusterPlaintextArgs() []string {
	if r.opts.Plaintext {
		return []string{"--insecure-plaintext-root"}
	}
	return nil
}
