package pki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func csrOf(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// TestParseCSR: the CA certifies only P-256 and Ed25519 keys whose holder
// signed the request.
func TestParseCSR(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, made, err := NewCSR("n1")
	if err != nil {
		t.Fatal(err)
	}
	good := csrOf(t, p256)
	b, _ := pem.Decode([]byte(good))
	b.Bytes[len(b.Bytes)-3] ^= 0xff // break the signature
	tampered := string(pem.EncodeToMemory(b))
	for _, tc := range []struct {
		name, pem string
		err       string
	}{
		{"NewCSR", string(made), ""},
		{"P-256", good, ""},
		{"Ed25519", csrOf(t, ed), ""},
		{"P-384", csrOf(t, p384), "want an ECDSA P-256 or Ed25519 key"},
		{"RSA", csrOf(t, rsaKey), "want an ECDSA P-256 or Ed25519 key"},
		{"bad signature", tampered, "certificate request"},
		{"not PEM", "hello", "want one PEM CERTIFICATE REQUEST"},
		{"a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "want one PEM CERTIFICATE REQUEST"},
		{"two requests", good + good, "want one PEM CERTIFICATE REQUEST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCSR([]byte(tc.pem))
			if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseCSR: %v; want %q", err, tc.err)
			}
		})
	}
}

// TestNodeOf: a node certificate names its node by URI and common name, in
// this cluster only.
func TestNodeOf(t *testing.T) {
	sign := testSigner(t)
	other, _ := url.Parse("spiffe://thicket/cluster/beta/node/n1")
	web, _ := url.Parse("https://example.com/n1")
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"node n1", sign(NodeLeaf("alpha", "n1", time.Hour)), "n1"},
		{"another cluster's", sign(NodeLeaf("beta", "n1", time.Hour)), ""},
		{"no URI", sign(Leaf{Name: "n1", Client: true, Validity: time.Hour}), ""},
		{"common name differs", sign(Leaf{Name: "n2", URIs: []*url.URL{NodeURI("alpha", "n1")}, Client: true, Validity: time.Hour}), ""},
		{"two identities", sign(Leaf{Name: "n1", URIs: []*url.URL{NodeURI("alpha", "n1"), other}, Client: true, Validity: time.Hour}), ""},
		{"other URIs ignored", sign(Leaf{Name: "n1", URIs: []*url.URL{NodeURI("alpha", "n1"), web}, Client: true, Validity: time.Hour}), "n1"},
		{"a deeper path", sign(Leaf{Name: "n1/x", URIs: []*url.URL{NodeURI("alpha", "n1/x")}, Client: true, Validity: time.Hour}), ""},
		{"none", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NodeOf(tc.cert, "alpha")
			if got != tc.want || (err == nil) != (tc.want != "") || err != nil && !errors.Is(err, ErrNotNodeCert) {
				t.Errorf("NodeOf = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if c := sign(NodeLeaf("alpha", "n1", time.Hour)); c.URIs[0].String() != "spiffe://thicket/cluster/alpha/node/n1" || c.Subject.CommonName != "n1" ||
		len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("node certificate: URIs %v, CN %q, ext key usage %v", c.URIs, c.Subject.CommonName, c.ExtKeyUsage)
	}
	short := sign(NodeLeaf("alpha", "n1", 20*time.Second))
	if life := short.NotAfter.Sub(short.NotBefore); life > 30*time.Second {
		t.Errorf("a 20 s certificate is valid for %s (backdated too far)", life)
	}
}

// testSigner signs leaves for one key with a new CA.
func testSigner(t *testing.T) func(Leaf) *x509.Certificate {
	ca, err := NewCA("c", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return func(l Leaf) *x509.Certificate {
		c, err := ca.Sign(key.Public(), l)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// TestClusterOf: a cluster certificate names its cluster by the URI alone;
// a node's certificate (a deeper path) names no cluster.
func TestClusterOf(t *testing.T) {
	sign := testSigner(t)
	web, _ := url.Parse("https://example.com/c1")
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"cluster c1", sign(ClusterLeaf("c1", "alpha", time.Hour)), "c1"},
		{"a node's", sign(NodeLeaf("c1", "n1", time.Hour)), ""},
		{"no URI", sign(Leaf{Name: "alpha", Client: true, Validity: time.Hour}), ""},
		{"two identities", sign(Leaf{Name: "alpha", URIs: []*url.URL{ClusterURI("c1"), ClusterURI("c2")}, Client: true, Validity: time.Hour}), ""},
		{"other URIs ignored", sign(Leaf{Name: "alpha", URIs: []*url.URL{ClusterURI("c1"), web}, Client: true, Validity: time.Hour}), "c1"},
		{"none", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ClusterOf(tc.cert)
			if got != tc.want || (err == nil) != (tc.want != "") || err != nil && !errors.Is(err, ErrNotClusterCert) {
				t.Errorf("ClusterOf = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	c := sign(ClusterLeaf("c1", "alpha", time.Hour))
	if c.URIs[0].String() != "spiffe://thicket/cluster/c1" || c.Subject.CommonName != "alpha" ||
		len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("cluster certificate: URIs %v, CN %q, ext key usage %v", c.URIs, c.Subject.CommonName, c.ExtKeyUsage)
	}
	if _, err := NodeOf(c, "c1"); err == nil {
		t.Error("a cluster certificate passes as a node's")
	}
}

// TestClientCert: the certificate is kept with its key in one 0600 file,
// replaced whole; an expired one is not presented; renewal is due at two
// thirds of the validity left when it came.
func TestClientCert(t *testing.T) {
	ca, err := NewCA("c", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "id.pem")
	cc := OpenClientCert(file)
	if cc.Current() != nil || !cc.RenewAt().IsZero() {
		t.Fatal("a missing file gives a certificate")
	}
	if c, _ := cc.GetClientCertificate(nil); len(c.Certificate) != 0 {
		t.Fatal("no certificate, but one is presented")
	}
	issue := func(validity time.Duration) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		l := NodeLeaf("alpha", "n1", validity)
		leaf, err := ca.Sign(key.Public(), l)
		if err != nil {
			t.Fatal(err)
		}
		return ca.ChainPEM(leaf), key
	}
	chain, key := issue(30 * time.Second)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := cc.Set(chain, other); err == nil {
		t.Fatal("a certificate with another key was taken")
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatal("a refused certificate was written")
	}
	got := time.Now()
	if err := cc.Set(chain, key); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v, %v; want mode 0600", st, err)
	}
	renew := cc.RenewAt()
	if want := got.Add(20 * time.Second); renew.Before(want.Add(-time.Second)) || renew.After(want.Add(time.Second)) {
		t.Errorf("renew at %s after receipt; want about 20 s", renew.Sub(got))
	}
	reopened := OpenClientCert(file)
	if c := reopened.Current(); c == nil || c.Leaf.SerialNumber.Cmp(cc.Current().Leaf.SerialNumber) != 0 {
		t.Fatal("the reopened file holds another certificate")
	}
	if c, _ := reopened.GetClientCertificate(nil); len(c.Certificate) != 2 {
		t.Errorf("presented %d certificates; want the leaf and the CA", len(c.Certificate))
	}
	expired, key2 := issue(-time.Minute)
	if err := cc.Set(expired, key2); err != nil {
		t.Fatal(err)
	}
	if c, _ := cc.GetClientCertificate(nil); len(c.Certificate) != 0 {
		t.Error("an expired certificate is presented")
	}
}
