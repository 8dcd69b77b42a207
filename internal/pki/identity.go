package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// A node's client certificate names it twice: its id as the subject's
// common name and, unambiguously, as the URI SAN
// spiffe://thicket/cluster/<cluster>/node/<id> (a SPIFFE ID: trust domain
// "thicket", path by tier). The URI is what identity checks read.
const spiffePrefix = "spiffe://thicket/cluster/"

// NodeURI is the identity URI of node id in cluster.
func NodeURI(cluster, id string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: "thicket", Path: "/cluster/" + cluster + "/node/" + id}
}

// NodeLeaf is what a node's client certificate is issued for.
func NodeLeaf(cluster, id string, validity time.Duration) Leaf {
	back := time.Hour
	if validity < 4*time.Hour {
		// A short-lived certificate (tests) must not be valid an hour
		// before it was asked for: its holder renews by its lifetime.
		back = validity / 4
	}
	return Leaf{Name: id, URIs: []*url.URL{NodeURI(cluster, id)}, Client: true, Validity: validity, Backdate: back}
}

// ErrNotNodeCert: a client certificate that names no node of the cluster.
var ErrNotNodeCert = errors.New("pki: not a node certificate of this cluster")

// NodeOf is the id of the node a (verified) client certificate names in
// cluster: its one spiffe:// URI SAN must be NodeURI(cluster, id) and its
// common name id.
func NodeOf(cert *x509.Certificate, cluster string) (string, error) {
	if cert == nil {
		return "", fmt.Errorf("%w: no certificate", ErrNotNodeCert)
	}
	id := spiffeID(cert, spiffePrefix+cluster+"/node/")
	if id == "" {
		return "", fmt.Errorf("%w: want the URI %s<id> (certificate of %q)", ErrNotNodeCert, spiffePrefix+cluster+"/node/", cert.Subject.CommonName)
	}
	if cert.Subject.CommonName != id {
		return "", fmt.Errorf("%w: common name %q and URI %q disagree", ErrNotNodeCert, cert.Subject.CommonName, id)
	}
	return id, nil
}

// spiffeID is the last path element of cert's one spiffe:// URI SAN if
// that is prefix<id> ("" if it has none, several, or another).
func spiffeID(cert *x509.Certificate, prefix string) string {
	var id string
	n := 0
	for _, u := range cert.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		n++
		rest, ok := strings.CutPrefix(u.String(), prefix)
		if ok && rest != "" && !strings.ContainsAny(rest, "/?#") {
			id = rest
		}
	}
	if n != 1 {
		return ""
	}
	return id
}

// NewCSR makes a key (ECDSA P-256) and a certificate request for it naming
// name, in PEM.
func NewCSR(name string) (crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: certificate request: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseCSR reads a certificate request in PEM, checks its signature (the
// requester holds the key) and its key (ECDSA P-256 or Ed25519), and
// returns the public key. Everything else in it (names, extensions) is
// ignored: the CA decides what it certifies.
func ParseCSR(pemData []byte) (crypto.PublicKey, error) {
	b, rest := pem.Decode(pemData)
	if b == nil || b.Type != "CERTIFICATE REQUEST" || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("pki: want one PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("pki: certificate request: %w", err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("pki: certificate request: want an ECDSA P-256 or Ed25519 key")
		}
	case ed25519.PublicKey:
	default:
		return nil, errors.New("pki: certificate request: want an ECDSA P-256 or Ed25519 key")
	}
	return csr.PublicKey, nil
}

// ClientCert is an identity's current client certificate, kept in one file
// (certificate chain and key in PEM, mode 0600) and replaced as a whole:
// TLS configurations that take it through GetClientCertificate present the
// new one at their next handshake, without closing what is connected.
type ClientCert struct {
	file string
	mu   sync.Mutex
	cur  *tls.Certificate
	got  time.Time // when cur was read or received
}

// OpenClientCert reads file if it holds a certificate and key (a missing,
// unreadable or broken file leaves it empty: the identity registers again).
func OpenClientCert(file string) *ClientCert {
	c := &ClientCert{file: file}
	if b, err := os.ReadFile(file); err == nil {
		if pair, err := tls.X509KeyPair(b, b); err == nil {
			c.cur, c.got = &pair, time.Now()
		}
	}
	return c
}

// Current is the certificate (nil: none).
func (c *ClientCert) Current() *tls.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// Set makes certificate chain chainPEM with key the current one, after
// checking that the chain's leaf is for key, and saves both to the file
// (atomically).
func (c *ClientCert) Set(chainPEM []byte, key crypto.Signer) error {
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(chainPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("pki: client certificate: %w", err)
	}
	if err := writeFile(c.file, append(append([]byte{}, chainPEM...), keyPEM...), 0o600); err != nil {
		return err
	}
	c.mu.Lock()
	c.cur, c.got = &pair, time.Now()
	c.mu.Unlock()
	return nil
}

// RenewAt is when the current certificate should be renewed (see RenewAt;
// zero without one).
func (c *ClientCert) RenewAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.Leaf == nil {
		return time.Time{}
	}
	return RenewAt(c.cur.Leaf, c.got)
}

// GetClientCertificate is for tls.Config: the current certificate while it
// is valid, else none (a server that verifies certificates given would
// refuse the handshake over an expired one; without one, it can still
// answer, e.g. a registration that issues a new one).
func (c *ClientCert) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	cur := c.Current()
	if cur == nil || cur.Leaf == nil || time.Now().After(cur.Leaf.NotAfter) {
		return &tls.Certificate{}, nil
	}
	return cur, nil
}

// RenewAt is when a certificate received at got should be renewed: at two
// thirds of what was left of its validity then (measured on this clock,
// so that a drifting clock does not matter).
func RenewAt(leaf *x509.Certificate, got time.Time) time.Time {
	return got.Add(leaf.NotAfter.Sub(got) * 2 / 3)
}

// VerifyClients is base (a listener's configuration) asking clients for a
// certificate and verifying any they present against ca (chain, validity,
// client use): one of another CA or an expired one fails the handshake,
// after refused (if set) was called with why. A client without one may go
// on; what a connection presented is Peer, and who it names the
// listener's question (NodeOf).
func VerifyClients(base *tls.Config, ca *CA, refused func(error)) *tls.Config {
	c := base.Clone()
	c.ClientAuth = tls.RequestClientCert
	pool := ca.Pool()
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
			Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			if refused != nil {
				refused(err)
			}
			return fmt.Errorf("pki: client certificate refused: %w", err)
		}
		return nil
	}
	return c
}

// Peer is the client certificate of a connection served with a
// VerifyClients configuration (verified by then), or nil.
func Peer(cs *tls.ConnectionState) *x509.Certificate {
	if cs == nil || !cs.HandshakeComplete || len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates[0]
}

// A cluster's client certificate (towards the root) names it the same way:
// its name as the common name, its id as the URI SAN
// spiffe://thicket/cluster/<id>, which identity checks read.

// ClusterURI is the identity URI of cluster id.
func ClusterURI(id string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: "thicket", Path: "/cluster/" + id}
}

// ClusterLeaf is what the client certificate of cluster id (named name) is
// issued for.
func ClusterLeaf(id, name string, validity time.Duration) Leaf {
	l := NodeLeaf("", "", validity)
	l.Name, l.URIs = name, []*url.URL{ClusterURI(id)}
	return l
}

// ErrNotClusterCert: a client certificate that names no cluster.
var ErrNotClusterCert = errors.New("pki: not a cluster certificate")

// ClusterOf is the id of the cluster a (verified) client certificate
// names: its one spiffe:// URI SAN must be ClusterURI(id).
func ClusterOf(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", fmt.Errorf("%w: no certificate", ErrNotClusterCert)
	}
	id := spiffeID(cert, spiffePrefix)
	if id == "" {
		return "", fmt.Errorf("%w: want the URI %s<id> (certificate of %q)", ErrNotClusterCert, spiffePrefix, cert.Subject.CommonName)
	}
	return id, nil
}
