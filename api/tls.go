package api

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// ErrUntrustedServer is a handshake with a server whose certificate is not
// issued by the CA the client trusts (Config.CAFile, CAPEM or CAPin): a
// man in the middle, or another server than the one meant.
var ErrUntrustedServer = errors.New("the server's certificate is not issued by the trusted CA")

// TLSConfig is a client TLS configuration that trusts exactly the CA in
// caPEM (PEM certificates) or the CA with pin ("sha256:" and the hex
// SHA-256 of its DER certificate, as thicket-root prints it and join tokens
// carry it), for a server reached as host; with both empty it is nil (the
// system's roots). The root's own CA is in <data-dir>/tls/ca.crt and at
// GET /ca.crt.
func TLSConfig(caPEM []byte, pin, host string) (*tls.Config, error) {
	switch {
	case len(caPEM) > 0 && pin != "":
		return nil, errors.New("a CA certificate or a CA pin, not both")
	case len(caPEM) > 0:
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("no PEM certificate in the CA file")
		}
		var want []byte
		if b, err := firstCert(caPEM); err == nil {
			want = b
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, //nolint:gosec // verified below
			VerifyConnection: func(cs tls.ConnectionState) error {
				return verifyChain(cs.PeerCertificates, serverName(cs, host), pool, "the CA of "+describeCA(want))
			}}, nil
	case pin != "":
		p, err := ParsePin(pin)
		if err != nil {
			return nil, err
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, //nolint:gosec // verified below
			VerifyConnection: func(cs tls.ConnectionState) error {
				pool := x509.NewCertPool()
				for _, c := range cs.PeerCertificates[1:] {
					if c.IsCA && caPin(c) == p {
						pool.AddCert(c)
					}
				}
				return verifyChain(cs.PeerCertificates, serverName(cs, host), pool, "the CA with pin "+p)
			}}, nil
	}
	return nil, nil
}

// ParsePin checks a CA pin's form: "sha256:" and 64 hex digits.
func ParsePin(s string) (string, error) {
	h, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	if _, err := hex.DecodeString(h); !ok || err != nil || len(h) != 2*sha256.Size {
		return "", fmt.Errorf("CA pin %q: want sha256: and %d hex digits", s, 2*sha256.Size)
	}
	return "sha256:" + h, nil
}

func caPin(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func firstCert(pemData []byte) ([]byte, error) {
	for rest := pemData; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil, errors.New("no certificate")
		}
		if block.Type == "CERTIFICATE" {
			return block.Bytes, nil
		}
	}
}

func describeCA(der []byte) string {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "the CA file"
	}
	return fmt.Sprintf("%q (pin %s)", c.Subject.CommonName, caPin(c))
}

func serverName(cs tls.ConnectionState, host string) string {
	if cs.ServerName != "" {
		return cs.ServerName
	}
	return host
}

// verifyChain verifies a server's chain against roots for name, and
// explains a refusal with the pins the server presented.
func verifyChain(chain []*x509.Certificate, name string, roots *x509.CertPool, trusted string) error {
	if len(chain) == 0 {
		return fmt.Errorf("%w (%s): the server sent no certificate", ErrUntrustedServer, trusted)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		var presented []string
		for _, c := range chain[1:] {
			if c.IsCA {
				presented = append(presented, caPin(c))
			}
		}
		if len(presented) == 0 {
			presented = []string{"no CA certificate"}
		}
		return fmt.Errorf("%w: expected %s, the server presented %s (certificate %q issued by %q): %w; a man in the middle, or another server",
			ErrUntrustedServer, trusted, strings.Join(presented, ", "), chain[0].Subject.CommonName, chain[0].Issuer.CommonName, err)
	}
	return nil
}

// withTLS returns hc (a new client when nil) using tc for HTTPS, over a
// copy of its transport (of the client's default one, sharedTransport,
// when it has none). A client whose transport is not an *http.Transport (a
// wrapper of the caller's) is an error: its TLS is the caller's to
// configure, and quietly replacing the transport would drop what the
// wrapper does. A caller's *http.Transport keeps its settings.
func withTLS(hc *http.Client, tc *tls.Config) (*http.Client, error) {
	out := &http.Client{}
	if hc != nil {
		*out = *hc
	}
	t := sharedTransport
	if out.Transport != nil {
		var ok bool
		if t, ok = out.Transport.(*http.Transport); !ok {
			return hc, fmt.Errorf("api: CAFile, CAPEM or CAPin with an HTTPClient whose transport is a %T: configure its TLS there instead", out.Transport)
		}
	}
	t = t.Clone()
	t.TLSClientConfig = tc
	out.Transport = t
	return out, nil
}

// clientTLS applies Config.CAFile, CAPEM and CAPin to the HTTP client.
func clientTLS(cfg Config, hc *http.Client) (*http.Client, error) {
	pemData := cfg.CAPEM
	if cfg.CAFile != "" {
		if len(pemData) > 0 {
			return hc, errors.New("api: CAFile and CAPEM: choose one")
		}
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return hc, fmt.Errorf("api: the CA file: %w", err)
		}
		pemData = b
	}
	host := ""
	if u, err := url.Parse(cfg.Address); err == nil {
		host = u.Hostname()
	}
	tc, err := TLSConfig(pemData, cfg.CAPin, host)
	if err != nil {
		return hc, fmt.Errorf("api: %w", err)
	}
	if tc == nil {
		return hc, nil
	}
	return withTLS(hc, tc)
}
