package pki_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
)

func newCA(t *testing.T, name string) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(name, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// TestLoadOrCreateCA: the first start makes a CA (key 0600), later starts
// load the same one; half a CA is an error, not a new CA.
func TestLoadOrCreateCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	ca, err := pki.LoadOrCreateCA(dir, "thicket root CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, pki.CAKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("CA key file: %v, %v; want mode 0600", st, err)
	}
	again, err := pki.LoadOrCreateCA(dir, "thicket root CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if again.Pin() != ca.Pin() {
		t.Errorf("reloaded CA pin %s, made %s", again.Pin(), ca.Pin())
	}
	if err := os.Remove(filepath.Join(dir, pki.CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadOrCreateCA(dir, "thicket root CA", time.Hour); err == nil || !strings.Contains(err.Error(), "not the other") {
		t.Errorf("CA without its key: %v; want an error naming the missing file", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, pki.CACertFile)); string(b) != string(ca.PEM) {
		t.Error("the CA certificate was replaced after its key went missing")
	}
}

// serve starts an HTTPS server with cert on 127.0.0.1.
func serve(t *testing.T, cert tls.Certificate) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func get(url, pin string) error {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.PinnedClient(pin, "127.0.0.1")}, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// TestPinnedClient: a client that pins a CA reaches the servers that CA
// certified for the address dialled, and refuses a man in the middle (a
// server with another CA's certificate for the same address), a
// certificate for another name, and a client certificate used as a
// server's.
func TestPinnedClient(t *testing.T) {
	ca, mitm := newCA(t, "root CA"), newCA(t, "evil CA")
	issue := func(ca *pki.CA, l pki.Leaf) tls.Certificate {
		t.Helper()
		l.Validity = time.Hour
		c, err := ca.Issue(l)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	for _, tc := range []struct {
		name string
		cert tls.Certificate
		pin  string
		ok   bool
	}{
		{"the pinned CA's server certificate", issue(ca, pki.Leaf{Name: "root", IPs: loopback, Server: true}), ca.Pin(), true},
		{"another CA's certificate (man in the middle)", issue(mitm, pki.Leaf{Name: "root", IPs: loopback, Server: true}), ca.Pin(), false},
		{"the pinned CA's certificate for another address", issue(ca, pki.Leaf{Name: "root", IPs: []net.IP{net.IPv4(10, 0, 0, 1)}, Server: true}), ca.Pin(), false},
		{"a client certificate of the pinned CA", issue(ca, pki.Leaf{Name: "node:a/n1", IPs: loopback, Client: true}), ca.Pin(), false},
		{"a client pinning the other CA", issue(ca, pki.Leaf{Name: "root", IPs: loopback, Server: true}), mitm.Pin(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := get(serve(t, tc.cert).URL, tc.pin)
			if tc.ok && err != nil {
				t.Fatalf("GET: %v", err)
			}
			if !tc.ok && (err == nil || !errors.Is(err, pki.ErrPinMismatch)) {
				t.Fatalf("GET: %v; want %v", err, pki.ErrPinMismatch)
			}
		})
	}
}

// TestIssue: certificates end their chain with the CA, never outlive it,
// and are for a server, a client or both.
func TestIssue(t *testing.T) {
	ca := newCA(t, "root CA")
	c, err := ca.Issue(pki.Leaf{Name: "cluster:alpha", Client: true, Validity: 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 2 || string(c.Certificate[1]) != string(ca.Cert.Raw) {
		t.Errorf("chain of %d certificates; want the leaf and the CA", len(c.Certificate))
	}
	if c.Leaf.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("leaf valid until %s, after its CA (%s)", c.Leaf.NotAfter, ca.Cert.NotAfter)
	}
	if c.Leaf.Subject.CommonName != "cluster:alpha" {
		t.Errorf("subject %q", c.Leaf.Subject.CommonName)
	}
	if _, err := ca.Issue(pki.Leaf{Name: "x", Validity: time.Hour}); err == nil {
		t.Error("a certificate for neither a server nor a client was issued")
	}
	certPEM, keyPEM, err := pki.EncodePair(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Errorf("encoded pair does not load: %v", err)
	}
}

// TestJoinToken: a token carries its server's pin and its secret; a token
// without a pin is all secret; malformed pins are refused.
func TestJoinToken(t *testing.T) {
	pin := newCA(t, "root CA").Pin()
	tok, err := pki.JoinToken(pin, "id.secret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "thk1") || strings.Contains(tok, "sha256:") {
		t.Errorf("token %q", tok)
	}
	for _, tc := range []struct {
		name, tok, pin, secret string
		bad                    bool
	}{
		{name: "pinned", tok: tok, pin: pin, secret: "id.secret"},
		{name: "surrounding space", tok: " " + tok + "\n", pin: pin, secret: "id.secret"},
		{name: "no pin", tok: "abcdef0123", secret: "abcdef0123"},
		{name: "short hash", tok: "thk1abcd::s", bad: true},
		{name: "not hex", tok: "thk1" + strings.Repeat("z", 64) + "::s", bad: true},
		{name: "no secret", tok: "thk1" + strings.Repeat("a", 64) + "::", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, s, err := pki.ParseJoinToken(tc.tok)
			if tc.bad {
				if err == nil {
					t.Fatalf("ParseJoinToken(%q) = %q, %q; want an error", tc.tok, p, s)
				}
				return
			}
			if err != nil || p != tc.pin || s != tc.secret {
				t.Fatalf("ParseJoinToken(%q) = %q, %q, %v; want %q, %q", tc.tok, p, s, err, tc.pin, tc.secret)
			}
		})
	}
	for _, bad := range [][2]string{{"sha256:abc", "s"}, {pin, ""}, {pin, "a::b"}} {
		if _, err := pki.JoinToken(bad[0], bad[1]); err == nil {
			t.Errorf("JoinToken(%q, %q) made a token", bad[0], bad[1])
		}
	}
}

// TestServing: the serving certificate is issued again once less than a
// third of its validity is left, and not before.
func TestServing(t *testing.T) {
	ca := newCA(t, "root CA")
	now := time.Now()
	s, err := pki.NewServing(ca, pki.Leaf{Name: "root", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true, Validity: 3 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.Certificate()
	for _, tc := range []struct {
		after time.Duration
		same  bool
	}{{time.Minute, true}, {110 * time.Minute, true}, {2*time.Hour + time.Minute, false}} {
		s.Now = func() time.Time { return now.Add(tc.after) }
		c, err := s.Certificate()
		if err != nil {
			t.Fatal(err)
		}
		if (c == first) != tc.same {
			t.Errorf("after %s: same certificate %v, want %v", tc.after, c == first, tc.same)
		}
	}
	if _, err := pki.NewServing(ca, pki.Leaf{Name: "c", Client: true}); err == nil {
		t.Error("a serving certificate for a client: no error")
	}
}
