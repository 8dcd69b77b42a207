package rootsync

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/internal/pki"
)

// ErrPlaintextRoot refuses an http:// root URL the configuration does not
// allow.
var ErrPlaintextRoot = errors.New("plain HTTP to the root")

// ErrNoPin refuses an https:// root without a pin to check it against.
var ErrNoPin = errors.New("no pin of the root's CA")

// trust works out how the link trusts the root: the pin in the join token
// (K3s-style "thk1<hash>::<secret>"), or the one saved with the cluster's
// identity at an earlier registration; and returns the token's secret, which
// is what the root checks.
//
// An https:// root must show a certificate of the pinned CA. An http://
// root is allowed only with Config.AllowPlaintext and a token that pins no
// CA (a token with a pin comes from a root that serves HTTPS).
func trust(ctx context.Context, cfg Config, st *state.Store) (pin, secret string, err error) {
	pin, secret, err = pki.ParseJoinToken(cfg.JoinToken)
	if err != nil {
		return "", "", fmt.Errorf("join token: %w", err)
	}
	u, err := url.Parse(cfg.RootURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", "", fmt.Errorf("root URL %q: want https://host:port", cfg.RootURL)
	}
	if u.Scheme == "http" {
		switch {
		case pin != "":
			return "", "", fmt.Errorf("%w: the join token pins the root's CA, so the root serves HTTPS: use https:// in the root URL %s", ErrPlaintextRoot, cfg.RootURL)
		case !cfg.AllowPlaintext:
			return "", "", fmt.Errorf("%w: %s would carry the cluster's credential and desired sets in clear; "+
				"use the root's https:// URL (it serves HTTPS unless started with --insecure-plaintext), or --insecure-plaintext-root for development", ErrPlaintextRoot, cfg.RootURL)
		}
		return "", secret, nil
	}
	if pin == "" {
		id, err := st.Identity(ctx)
		if err != nil {
			return "", "", err
		}
		if id != nil && id.RootURL == cfg.RootURL {
			pin = id.RootPin
		}
	}
	if pin == "" {
		return "", "", fmt.Errorf("%w: the join token carries none (the root prints tokens of the form thk1<hash>::<secret>: "+
			"take the token from the root's <data-dir>/cluster-join-token, POST /api/clusters/tokens or thicket token create)", ErrNoPin)
	}
	return pin, secret, nil
}

// client is an HTTP client to the root, verifying it against pin (none:
// plain HTTP).
func client(rootURL, pin string, timeout time.Duration, cert func(*tls.CertificateRequestInfo) (*tls.Certificate, error)) *http.Client {
	c := &http.Client{Timeout: timeout}
	if pin == "" {
		return c
	}
	u, _ := url.Parse(rootURL)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = pki.PinnedClient(pin, u.Hostname())
	t.TLSClientConfig.GetClientCertificate = cert
	c.Transport = t
	return c
}

// refusedRoot explains a root whose certificate does not match the pin.
func refusedRoot(rootURL string, err error) error {
	if errors.Is(err, pki.ErrPinMismatch) {
		return fmt.Errorf("refused the root at %s: its certificate is not of the CA the join token pins: %w", rootURL, err)
	}
	return err
}
