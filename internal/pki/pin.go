package pki

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// pinPrefix names the hash of a pin.
const pinPrefix = "sha256:"

// Pin is a CA certificate's pin: "sha256:" and the hex SHA-256 of its DER
// encoding. A client that holds a pin trusts the servers whose chain holds
// that CA and whose certificate it signed, and nothing else, whatever the
// system's roots say.
func Pin(ca *x509.Certificate) string {
	sum := sha256.Sum256(ca.Raw)
	return pinPrefix + hex.EncodeToString(sum[:])
}

// ParsePin checks a pin's form ("sha256:" and 64 hex digits).
func ParsePin(s string) (string, error) {
	h, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), pinPrefix)
	if !ok || len(h) != 2*sha256.Size {
		return "", fmt.Errorf("pki: pin %q: want sha256: and %d hex digits", s, 2*sha256.Size)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("pki: pin %q: want sha256: and %d hex digits", s, 2*sha256.Size)
	}
	return pinPrefix + h, nil
}

// ErrPinMismatch is the error of a handshake with a server whose chain does
// not hold the pinned CA.
var ErrPinMismatch = errors.New("the server's certificate is not issued by the pinned CA")

// PinnedClient is a client TLS configuration that trusts exactly the CA
// with the given pin: the server must send a chain holding that CA, and
// its certificate must be a server certificate the CA signed for host (the
// name or IP address dialled; Go sends no server name for an IP address,
// so the caller says it). The system's roots play no part, so a man in the
// middle with any other certificate is refused.
func PinnedClient(pin, host string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Go's own verification is replaced by VerifyConnection below, which
		// verifies the chain against the pinned CA instead of the system's
		// roots.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			name := cs.ServerName
			if name == "" {
				name = host
			}
			if name == "" {
				return fmt.Errorf("pki: %w: no server name to check the certificate against", ErrPinMismatch)
			}
			return VerifyPinned(cs.PeerCertificates, pin, name)
		},
	}
}

// VerifyPinned verifies a server's chain (leaf first) against the CA with
// the given pin, and that the leaf is a server certificate for name.
func VerifyPinned(chain []*x509.Certificate, pin, name string) error {
	if len(chain) == 0 {
		return fmt.Errorf("pki: %w: the server sent no certificate", ErrPinMismatch)
	}
	var ca *x509.Certificate
	for _, c := range chain[1:] {
		if c.IsCA && Pin(c) == pin {
			ca = c
			break
		}
	}
	if ca == nil {
		return fmt.Errorf("pki: %w: expected %s, the server presented %s (its certificate %q is issued by %q): a man in the middle, or a token of another server",
			ErrPinMismatch, pin, presented(chain), chain[0].Subject.CommonName, chain[0].Issuer.CommonName)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		if c != ca {
			inter.AddCert(c)
		}
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       name,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("pki: %w: %w", ErrPinMismatch, err)
	}
	return nil
}

// presented names the pins a server's chain offers: those of the CA
// certificates it sent, or the leaf's own when it sent none.
func presented(chain []*x509.Certificate) string {
	var pins []string
	for _, c := range chain[1:] {
		if c.IsCA {
			pins = append(pins, Pin(c))
		}
	}
	if len(pins) == 0 {
		return "no CA certificate (its own: " + Pin(chain[0]) + ")"
	}
	return strings.Join(pins, ", ")
}

// Join tokens carry the pin of the CA of the server they join, as K3s
// tokens do ("K10<hash>::<credentials>"): "thk1" and the hex hash, "::",
// then the secret.
const tokenPrefix = "thk1"

// JoinToken joins a CA's pin and a secret into one token.
func JoinToken(pin, secret string) (string, error) {
	p, err := ParsePin(pin)
	if err != nil {
		return "", err
	}
	if secret == "" || strings.Contains(secret, "::") {
		return "", errors.New("pki: a join token's secret must be non-empty and hold no \"::\"")
	}
	return tokenPrefix + strings.TrimPrefix(p, pinPrefix) + "::" + secret, nil
}

// ParseJoinToken splits a join token into the pin it carries and its
// secret. A token without a pin (made before tokens carried one, or typed
// by hand) gives pin "" and the whole token as the secret: the caller
// decides whether it may trust a server without one.
func ParseJoinToken(tok string) (pin, secret string, err error) {
	tok = strings.TrimSpace(tok)
	head, rest, ok := strings.Cut(tok, "::")
	if !ok || !strings.HasPrefix(head, tokenPrefix) {
		return "", tok, nil
	}
	p, err := ParsePin(pinPrefix + strings.TrimPrefix(head, tokenPrefix))
	if err != nil {
		return "", "", fmt.Errorf("pki: join token: %w", err)
	}
	if rest == "" {
		return "", "", errors.New("pki: join token: no secret after \"::\"")
	}
	return p, rest, nil
}
