package apitest

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestHTTPS: the root serves HTTPS by default with the CA it made at first
// start (the same after a restart), serves that CA at /ca.crt and pins it
// in the join tokens it prints; plain HTTP gets no API.
func TestHTTPS(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=tls-admin-password"})
	if !strings.HasPrefix(r.URL, "https://") {
		t.Fatalf("root URL %s", r.URL)
	}
	pin, err := r.started.Pin()
	if err != nil {
		t.Fatal(err)
	}
	caPEM := readFile(t, r.started.CAFile())
	resp := r.do("GET", "/ca.crt", "", nil)
	if resp.Status != http.StatusOK || string(resp.Body) != caPEM {
		t.Errorf("GET /ca.crt: %s; want the CA file", resp)
	}
	if !strings.Contains(r.logs.String(), "ca_pin="+pin) {
		t.Errorf("the root did not log its CA pin %s", pin)
	}
	tok := strings.TrimSpace(readFile(t, filepath.Join(r.DataDir, "cluster-join-token")))
	if got, _, err := pki.ParseJoinToken(tok); err != nil || got != pin {
		t.Errorf("default join token %q pins %q, %v; want %s", tok, got, err, pin)
	}
	// Plain HTTP to the HTTPS port is no API.
	if plain, err := http.Get(strings.Replace(r.URL, "https://", "http://", 1) + "/healthz"); err == nil {
		b, _ := io.ReadAll(plain.Body)
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP answered: %d %s", plain.StatusCode, b)
		}
	}
	// A client that trusts the system's roots only refuses the root.
	if err := api.NewClient(api.Config{Address: r.URL}).Health(context.Background()); err == nil {
		t.Error("a client without the root's CA trusted it")
	}
	r.restart(false)
	if again, _ := r.started.Pin(); again != pin {
		t.Errorf("CA pin after a restart %s, before %s", again, pin)
	}
	r.must("GET", "/healthz", "", nil, nil)
}

// TestInsecurePlaintext: --insecure-plaintext serves plain HTTP, warns
// about it at every start, and prints join tokens without a pin.
func TestInsecurePlaintext(t *testing.T) {
	dir := t.TempDir()
	started, err := bin.StartRoot(context.Background(), testharness.RootOptions{DataDir: dir, Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = started.Proc.Stop() })
	if !strings.HasPrefix(started.URL, "http://") || !strings.Contains(started.Proc.Log().String(), "INSECURE: --insecure-plaintext") {
		t.Errorf("URL %s, log:\n%s", started.URL, started.Proc.Log())
	}
	tok := strings.TrimSpace(readFile(t, filepath.Join(dir, "cluster-join-token")))
	if pin, _, _ := pki.ParseJoinToken(tok); pin != "" || !strings.HasPrefix(tok, "thj_") {
		t.Errorf("join token %q of a plain root", tok)
	}
	if _, err := os.Stat(filepath.Join(dir, "tls")); !os.IsNotExist(err) {
		t.Errorf("a plain root made a CA: %v", err)
	}
}

// TestOperatorCA: the operator's CA (--tls-ca-cert, --tls-ca-key) issues
// the root's certificate and is the pin in its tokens; a serving
// certificate of another CA than --tls-ca-cert is refused at start with a
// clear error.
func TestOperatorCA(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("operator CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ca.KeyPEM()
	caCert, caKey := filepath.Join(dir, "op-ca.crt"), filepath.Join(dir, "op-ca.key")
	_ = os.WriteFile(caCert, ca.PEM, 0o644)
	_ = os.WriteFile(caKey, key, 0o600)
	started, err := bin.StartRoot(context.Background(), testharness.RootOptions{DataDir: t.TempDir(), CAFile: caCert,
		Args: []string{"--tls-ca-cert", caCert, "--tls-ca-key", caKey}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = started.Proc.Stop() })
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	resp, err := cl.Get(started.URL + "/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != string(ca.PEM) {
		t.Errorf("/ca.crt is not the operator's CA")
	}
	tok := strings.TrimSpace(readFile(t, filepath.Join(started.DataDir, "cluster-join-token")))
	if pin, _, _ := pki.ParseJoinToken(tok); pin != ca.Pin() {
		t.Errorf("token pins %s; want the operator CA's %s", pin, ca.Pin())
	}

	other, _ := pki.NewCA("other CA", time.Hour)
	leaf, _ := other.Issue(pki.Leaf{Name: "root", DNSNames: []string{"localhost"}, Server: true, Validity: time.Hour})
	certPEM, keyPEM, _ := pki.EncodePair(leaf)
	cert, certKey := filepath.Join(dir, "srv.crt"), filepath.Join(dir, "srv.key")
	_ = os.WriteFile(cert, certPEM, 0o644)
	_ = os.WriteFile(certKey, keyPEM, 0o600)
	_, err = bin.StartRoot(context.Background(), testharness.RootOptions{DataDir: t.TempDir(), Timeout: 10 * time.Second,
		Args: []string{"--tls-ca-cert", caCert, "--tls-cert", cert, "--tls-key", certKey}})
	if err == nil || !strings.Contains(err.Error(), "--tls-cert is not a server certificate issued by --tls-ca-cert") {
		t.Errorf("start with another CA's certificate: %v", err)
	}
}
