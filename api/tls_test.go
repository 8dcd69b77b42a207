package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a CA and a server certificate it issued for 127.0.0.1.
type testCA struct {
	pem    []byte
	pin    string
	server tls.Certificate
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name + " server"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, leafKey.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pin: caPin(ca),
		server: tls.Certificate{Certificate: [][]byte{leafDER, der}, PrivateKey: leafKey}}
}

func tlsServer(t *testing.T, cert tls.Certificate) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// TestTLSTrust: a client given the root's CA (file, PEM or pin) talks to
// the root and refuses a server with another CA's certificate (a man in
// the middle), naming the expected and presented CAs; a bad CA
// configuration fails every call instead of falling back to the system's
// roots.
func TestTLSTrust(t *testing.T) {
	root, mitm := newTestCA(t, "root CA"), newTestCA(t, "mitm CA")
	real, fake := tlsServer(t, root.server), tlsServer(t, mitm.server)
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, root.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		url  string
		err  string // "" for success
	}{
		{"CA file", Config{CAFile: caFile}, real.URL, ""},
		{"CA PEM", Config{CAPEM: root.pem}, real.URL, ""},
		{"CA pin", Config{CAPin: strings.ToUpper(root.pin[:7]) + root.pin[7:]}, real.URL, ""},
		{"CA file, man in the middle", Config{CAFile: caFile}, fake.URL, "refused " + fake.URL + ": the server's certificate is not issued by the trusted CA: expected the CA of \"root CA\" (pin " + root.pin + "), the server presented " + mitm.pin},
		{"CA pin, man in the middle", Config{CAPin: root.pin}, fake.URL, "refused " + fake.URL + ": the server's certificate is not issued by the trusted CA: expected the CA with pin " + root.pin + ", the server presented " + mitm.pin},
		{"no CA: the system's roots", Config{}, real.URL, "certificate signed by unknown authority"},
		{"bad pin", Config{CAPin: "sha256:abc"}, real.URL, "CA pin \"sha256:abc\""},
		{"missing CA file", Config{CAFile: caFile + ".missing"}, real.URL, "the CA file"},
		{"file and pin", Config{CAPEM: root.pem, CAPin: root.pin}, real.URL, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Address = tc.url
			err := NewClient(tc.cfg).Health(context.Background())
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("GET /healthz: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("GET /healthz: %v; want an error with %q", err, tc.err)
			case strings.Contains(tc.name, "man in the middle") && !errors.Is(err, ErrUntrustedServer):
				t.Fatalf("error %v is not ErrUntrustedServer", err)
			}
		})
	}
}

type wrapper struct{ http.RoundTripper }

// TestTLSWithAForeignTransport: a CA option beside an HTTP client whose
// transport the client cannot configure is an error on every call, not a
// transport quietly replaced (which would drop what the wrapper does).
func TestTLSWithAForeignTransport(t *testing.T) {
	c := NewClient(Config{Address: "https://127.0.0.1:1", CAPin: "sha256:" + strings.Repeat("ab", 32),
		HTTPClient: &http.Client{Transport: wrapper{http.DefaultTransport}}})
	_, err := c.Raw(context.Background(), "GET", "/healthz", nil)
	if err == nil || !strings.Contains(err.Error(), "configure its TLS there") {
		t.Fatalf("call with a CA pin and a wrapped transport: %v", err)
	}
}
