package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// PresentedPins names the CAs a server's chain holds, as pins ("none" when
// it sends no CA certificate), for an error that says what was presented
// beside what was expected.
func PresentedPins(chain []*x509.Certificate) string {
	var pins []string
	for _, c := range chain {
		if c.IsCA {
			pins = append(pins, Pin(c))
		}
	}
	if len(pins) == 0 {
		return "none (the server sent no CA certificate)"
	}
	return strings.Join(pins, ", ")
}

// PinnedClientNaming is PinnedClient whose refusal names both the expected
// pin and the pins the server presented.
func PinnedClientNaming(pin, host string) *tls.Config {
	c := PinnedClient(pin, host)
	verify := c.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verify(cs); err != nil {
			return fmt.Errorf("%w; expected %s, presented %s", err, pin, PresentedPins(cs.PeerCertificates))
		}
		return nil
	}
	return c
}

// ParseCAs reads the CA certificates of a PEM bundle.
func ParseCAs(pemData []byte) ([]*x509.Certificate, error) {
	var cas []*x509.Certificate
	for rest := pemData; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: CA bundle: %w", err)
		}
		cas = append(cas, c)
	}
	if len(cas) == 0 {
		return nil, errors.New("pki: CA bundle: no certificate")
	}
	return cas, nil
}

// CAClient is a client TLS configuration that trusts exactly the CAs in
// pemData (not the system's roots) for a server at host: for a server that
// does not send its CA, such as a Mosquitto with only its own certificate
// in certfile. A refusal names the trusted CAs' pins and the issuer the
// server presented.
func CAClient(pemData []byte, host string) (*tls.Config, error) {
	cas, err := ParseCAs(pemData)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	var pins []string
	for _, c := range cas {
		roots.AddCert(c)
		pins = append(pins, Pin(c))
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			name := cs.ServerName
			if name == "" {
				name = host
			}
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("pki: %w: the server sent no certificate", ErrPinMismatch)
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			leaf := cs.PeerCertificates[0]
			_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			if err != nil {
				return fmt.Errorf("pki: %w: the server's certificate %q, issued by %q: %w; expected a CA of %s", ErrPinMismatch,
					leaf.Subject.CommonName, leaf.Issuer.CommonName, err, strings.Join(pins, ", "))
			}
			return nil
		},
	}, nil
}

// NewCAWithLeaf makes a new CA named caName, valid for l.Validity, and
// issues l with it: a server of a CA of its own (tests, a man in the middle
// in them).
func NewCAWithLeaf(caName string, l Leaf) (*CA, tls.Certificate, error) {
	ca, err := NewCA(caName, l.Validity)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	cert, err := ca.Issue(l)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	return ca, cert, nil
}
