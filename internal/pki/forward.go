package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Root replicas that follow forward every request to the leader; a client
// certificate a follower verified goes along in a header, which the leader
// takes only from a connection that presented a replica's certificate
// (URI SAN spiffe://thicket/root, issued by the shared CA).

// ForwardedClientCert is the header a follower replica forwards the
// client's certificate in (base64 of its DER).
const ForwardedClientCert = "X-Thicket-Client-Cert"

// ReplicaURI is the identity URI of the root's replicas.
func ReplicaURI() *url.URL { return &url.URL{Scheme: "spiffe", Host: "thicket", Path: "/root"} }

// IsReplica reports whether a (verified) client certificate is a root
// replica's.
func IsReplica(cert *x509.Certificate) bool {
	return cert != nil && len(cert.URIs) == 1 && cert.URIs[0].String() == ReplicaURI().String()
}

// ReplicaCert issues a replica's client certificate (one day) and issues
// it again at half its validity: for tls.Config.GetClientCertificate.
func ReplicaCert(ca *CA) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	var mu sync.Mutex
	var cur *tls.Certificate
	const validity = 24 * time.Hour
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		mu.Lock()
		defer mu.Unlock()
		if cur == nil || time.Now().After(cur.Leaf.NotAfter.Add(-validity/2)) {
			c, err := ca.Issue(Leaf{Name: "thicket-root replica", URIs: []*url.URL{ReplicaURI()}, Client: true, Validity: validity})
			if err != nil {
				return nil, err
			}
			cur = &c
		}
		return cur, nil
	}
}

// SetForwarded sets, on out (a request a follower forwards), the client
// certificate of the connection the request came by (cs, verified by
// VerifyClients), replacing whatever the client sent in the header.
func SetForwarded(out *http.Request, cs *tls.ConnectionState) {
	out.Header.Del(ForwardedClientCert)
	if c := Peer(cs); c != nil {
		out.Header.Set(ForwardedClientCert, base64.StdEncoding.EncodeToString(c.Raw))
	}
}

// ClientOf is the client certificate of r: its connection's, or, when
// that is a replica's, the one the replica forwarded (verified again
// against ca: chain, validity, client use), nil if none.
func ClientOf(r *http.Request, ca *CA) *x509.Certificate {
	c := Peer(r.TLS)
	if !IsReplica(c) {
		return c
	}
	der, err := base64.StdEncoding.DecodeString(r.Header.Get(ForwardedClientCert))
	if err != nil || len(der) == 0 {
		return nil
	}
	fwd, err := x509.ParseCertificate(der)
	if err != nil {
		return nil
	}
	if _, err := fwd.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil
	}
	return fwd
}
