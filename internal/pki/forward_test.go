package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestForwardedClientCert: the leader takes a forwarded certificate only
// from a replica's connection, and only one its CA issued; a follower
// replaces what a client put in the header.
func TestForwardedClientCert(t *testing.T) {
	ca, err := NewCA("root", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewCA("other", time.Hour)
	issue := func(ca *CA, l Leaf) *x509.Certificate {
		c, err := ca.Issue(l)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf
	}
	alpha := issue(ca, ClusterLeaf("c1", "alpha", time.Hour))
	forged := issue(other, ClusterLeaf("c1", "alpha", time.Hour))
	replicaPair, err := ReplicaCert(ca)(nil)
	if err != nil {
		t.Fatal(err)
	}
	replica := replicaPair.Leaf
	if !IsReplica(replica) || IsReplica(alpha) {
		t.Fatal("IsReplica")
	}
	state := func(c *x509.Certificate) *tls.ConnectionState {
		if c == nil {
			return nil
		}
		return &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{c}}
	}
	for _, tc := range []struct {
		name   string
		conn   *x509.Certificate
		header *x509.Certificate
		want   *x509.Certificate
	}{
		{"a client's own", alpha, nil, alpha},
		{"a client's own, a header ignored", alpha, forged, alpha},
		{"no certificate, a header ignored", nil, alpha, nil},
		{"a replica forwards alpha's", replica, alpha, alpha},
		{"a replica forwards none", replica, nil, nil},
		{"a replica forwards another CA's", replica, forged, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/cluster/sync", nil)
			r.TLS = state(tc.conn)
			if tc.header != nil {
				r.Header.Set(ForwardedClientCert, base64.StdEncoding.EncodeToString(tc.header.Raw))
			}
			if got := ClientOf(r, ca); got != tc.want && (got == nil || tc.want == nil || !got.Equal(tc.want)) {
				t.Errorf("ClientOf = %v, want %v", got, tc.want)
			}
		})
	}

	// The follower: the connection's certificate replaces the header.
	out := &http.Request{Header: http.Header{ForwardedClientCert: {"forged"}}}
	SetForwarded(out, state(alpha))
	if out.Header.Get(ForwardedClientCert) != base64.StdEncoding.EncodeToString(alpha.Raw) {
		t.Errorf("forwarded %q", out.Header.Get(ForwardedClientCert))
	}
	SetForwarded(out, nil)
	if _, ok := out.Header[ForwardedClientCert]; ok {
		t.Errorf("a client without a certificate forwarded the header it sent")
	}
}
