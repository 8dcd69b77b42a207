// Package pki is the certificate authority of a Thicket tier and the trust
// of the tier below in it: a tier's CA (created at first start, or the
// operator's files), the certificates it issues to its own listeners and to
// the identities that register with it, and the pin a join token carries so
// that the joining side trusts exactly that CA (as K3s tokens carry the
// hash of the server CA).
//
// Keys are ECDSA P-256: every TLS stack here (Go, curl, Chromium, Mosquitto)
// accepts them, which Ed25519 certificates are not.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// File names of a CA in its directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// CA is a certificate authority: its certificate and its key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// PEM is Cert encoded, as clients are given it.
	PEM []byte
}

// NewCA makes a self-signed CA named name, valid for validity.
func NewCA(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour), // clocks at the edge drift
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, PEM: encodeCert(der)}, nil
}

// LoadOrCreateCA reads the CA in dir (ca.crt, ca.key), or makes one named
// name and writes it there (the key 0600) when dir has none. Half a CA (one
// file without the other) is an error, not a reason to make a new one: the
// tiers below trust the old one.
func LoadOrCreateCA(dir, name string, validity time.Duration) (*CA, error) {
	certFile, keyFile := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	_, errCert := os.Stat(certFile)
	_, errKey := os.Stat(keyFile)
	switch {
	case errCert == nil && errKey == nil:
		return LoadCA(certFile, keyFile)
	case errors.Is(errCert, os.ErrNotExist) && errors.Is(errKey, os.ErrNotExist):
	default:
		return nil, fmt.Errorf("pki: %s has one of %s and %s but not the other: restore it, or remove both to make a new CA (every joined tier must then join again)", dir, CACertFile, CAKeyFile)
	}
	ca, err := NewCA(name, validity)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(ca.Key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	// The key first: a crash between the two leaves no certificate whose
	// key is missing.
	if err := writeFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(certFile, ca.PEM, 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

// LoadCA reads a CA from PEM files (an operator's own CA, or one made by
// LoadOrCreateCA).
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}
	ca, err := ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w (%s, %s)", err, certFile, keyFile)
	}
	return ca, nil
}

// ParseCA reads a CA from its certificate and key in PEM (as KeyPEM and
// CA.PEM give them, e.g. kept in a store that replicas share).
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("pki: load CA: not a CA certificate")
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("pki: load CA: the key cannot sign")
	}
	return &CA{Cert: cert, Key: signer, PEM: encodeCert(cert.Raw)}, nil
}

// KeyPEM is the CA's key in PEM (PKCS #8).
func (ca *CA) KeyPEM() ([]byte, error) { return encodeKey(ca.Key) }

// Leaf is what a certificate is issued for.
type Leaf struct {
	// Name is the subject's common name: a listener's host name, or an
	// identity ("cluster:alpha", "node:alpha/n1").
	Name string
	// DNSNames and IPs are the server names a listener answers to.
	DNSNames []string
	IPs      []net.IP
	// URIs are the identity's URI SANs (e.g. NodeURI).
	URIs []*url.URL
	// Server and Client say which ends of a TLS connection it may be;
	// CodeSigning that it signs what is downloaded (see CertifySigningKey).
	Server, Client, CodeSigning bool
	Validity                    time.Duration
	// Backdate is how long before now the certificate starts to be valid
	// (clocks at the edge drift); 0: one hour.
	Backdate time.Duration
}

// Issue makes a key and a certificate for l, signed by the CA. The
// certificate chain it returns ends with the CA's certificate, so that a
// client that pins the CA finds it in the handshake.
func (ca *CA) Issue(l Leaf) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: key for %s: %w", l.Name, err)
	}
	leaf, err := ca.Sign(key.Public(), l)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// Sign issues a certificate for l to the holder of the private key of pub
// (e.g. from a certificate request, see ParseCSR), signed by the CA.
func (ca *CA) Sign(pub crypto.PublicKey, l Leaf) (*x509.Certificate, error) {
	if !l.Server && !l.Client && !l.CodeSigning {
		return nil, errors.New("pki: a certificate for neither a server, a client nor code signing")
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	back := l.Backdate
	if back <= 0 {
		back = time.Hour
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: l.Name},
		NotBefore:    now.Add(-back),
		NotAfter:     now.Add(l.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		DNSNames:     l.DNSNames,
		IPAddresses:  l.IPs,
		URIs:         l.URIs,
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	if l.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if l.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	if l.CodeSigning {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageCodeSigning)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate for %s: %w", l.Name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate for %s: %w", l.Name, err)
	}
	return leaf, nil
}

// ChainPEM is leaf followed by the CA's certificate, in PEM.
func (ca *CA) ChainPEM(leaf *x509.Certificate) []byte {
	return append(encodeCert(leaf.Raw), ca.PEM...)
}

// Pool is a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Pin is the CA's pin (see Pin).
func (ca *CA) Pin() string { return Pin(ca.Cert) }

// EncodePair encodes a certificate chain and its key as PEM, for files.
func EncodePair(c tls.Certificate) (certPEM, keyPEM []byte, err error) {
	for _, der := range c.Certificate {
		certPEM = append(certPEM, encodeCert(der)...)
	}
	signer, ok := c.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("pki: the key cannot sign")
	}
	keyPEM, err = encodeKey(signer)
	return certPEM, keyPEM, err
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return s, nil
}

// writeFile writes data to file atomically (a temporary file renamed), so
// that a crash leaves the old file or the new one.
func writeFile(file string, data []byte, mode os.FileMode) error {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}
