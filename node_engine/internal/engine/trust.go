package engine

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
)

// ErrUntrusted: the cluster's URL, token or broker cannot be verified (no
// pin for an https:// URL, a plain URL without the development flag).
// Registration does not retry it.
var ErrUntrusted = errors.New("cannot verify the cluster")

// clusterTrust is how the node verifies its cluster: the pin of the
// cluster's CA from the join token, for an https:// node API.
type clusterTrust struct {
	pin, secret string
	host        string
	plain       bool // http:// (InsecurePlaintext)
}

// trust checks the cluster URL and the join token against each other and
// the development flag.
func (e *Engine) trust() (clusterTrust, error) {
	pin, secret, err := pki.ParseJoinToken(e.cfg.JoinToken)
	if err != nil {
		return clusterTrust{}, fmt.Errorf("%w: the node join token: %w", ErrUntrusted, err)
	}
	u, err := url.Parse(e.cfg.ClusterURL)
	if err != nil || u.Host == "" {
		return clusterTrust{}, fmt.Errorf("%w: cluster URL %q: want https://host:port", ErrUntrusted, e.cfg.ClusterURL)
	}
	t := clusterTrust{pin: pin, secret: secret, host: u.Hostname()}
	switch strings.ToLower(u.Scheme) {
	case "https":
		if pin == "" {
			return clusterTrust{}, fmt.Errorf("%w: the node join token carries no pin of the cluster's CA (tokens in thk1<hash>::<secret> form do): "+
				"copy the token from the cluster's <data-dir>/node-join-token", ErrUntrusted)
		}
	case "http":
		if !e.cfg.InsecurePlaintext {
			return clusterTrust{}, fmt.Errorf("%w: cluster URL %s is plain HTTP, which would carry the join token and the MQTT password in clear: "+
				"use https:// (the cluster serves it by default), or --insecure-plaintext for development", ErrUntrusted, e.cfg.ClusterURL)
		}
		t.plain = true
	default:
		return clusterTrust{}, fmt.Errorf("%w: cluster URL %q: want https://host:port", ErrUntrusted, e.cfg.ClusterURL)
	}
	return t, nil
}

// httpClient is the client of the node API: it trusts exactly the pinned
// CA for https://, and presents the node's client certificate cc, if any.
func (t clusterTrust) httpClient(cc *pki.ClientCert) *http.Client {
	c := &http.Client{Timeout: 15 * time.Second}
	if !t.plain {
		tc := pki.PinnedClientNaming(t.pin, t.host)
		if cc != nil {
			tc.GetClientCertificate = cc.GetClientCertificate
		}
		c.Transport = &http.Transport{TLSClientConfig: tc, TLSHandshakeTimeout: 10 * time.Second}
	}
	return c
}

// mqttTLS is how the node verifies the broker the cluster named: with the
// CA the cluster sent over the pinned node API (for its embedded broker,
// the cluster's own CA), or the system's roots when it sent none. A plain
// broker needs the development flag.
func (e *Engine) mqttTLS(c *credentials) (*tls.Config, error) {
	u, err := url.Parse(c.MQTTURL)
	if err != nil {
		return nil, fmt.Errorf("%w: broker URL %q: %w", ErrUntrusted, c.MQTTURL, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
		if !e.cfg.InsecurePlaintext {
			return nil, fmt.Errorf("%w: the cluster names a plain MQTT broker (%s), which would carry this node's MQTT password and desired set in clear: "+
				"the cluster must serve mqtts:// (run it without --insecure-plaintext), or start this node with --insecure-plaintext for development", ErrUntrusted, c.MQTTURL)
		}
		return nil, nil
	}
	if c.MQTTCAPEM == "" {
		return nil, nil
	}
	tc, err := pki.CAClient([]byte(c.MQTTCAPEM), u.Hostname())
	if err != nil {
		return nil, fmt.Errorf("%w: the broker's CA from the cluster: %w", ErrUntrusted, err)
	}
	// Asked for at every handshake: a reconnection presents the
	// certificate renewed meanwhile.
	tc.GetClientCertificate = e.identity().GetClientCertificate
	return tc, nil
}
