package commands

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/cli/internal/config"
	"github.com/thicket-edge/thicket/internal/pki"
)

// tlsRoot is a fake root serving HTTPS with a certificate of a new CA; it
// answers login and the token list.
func tlsRoot(t *testing.T) (*httptest.Server, *pki.CA) {
	t.Helper()
	ca, err := pki.NewCA("root CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(pki.Leaf{Name: "root", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/auth/login", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Tokens{Token: "access", RefreshToken: "refresh", Username: "Admin", Role: "admin", ExpiresIn: 900})
	})
	mux.HandleFunc("GET /api/clusters/tokens", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("[]")) })
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, ca
}

// TestTrustedCA: login --ca-file (or --ca-pin) saves the root's CA with
// the session and later commands verify the root with it; a server with
// another CA's certificate (a man in the middle) is refused with the
// expected and presented pins, and the saved login stays; without a CA the
// error says how to give one.
func TestTrustedCA(t *testing.T) {
	root, ca := tlsRoot(t)
	mitm, other := tlsRoot(t)
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(dir string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), "v1", append([]string{"--config", dir}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	for _, tc := range []struct {
		name  string
		flag  []string
		saved config.Credentials
	}{
		{"ca-file", []string{"--ca-file", caFile}, config.Credentials{CA: string(ca.PEM)}},
		{"ca-pin", []string{"--ca-pin", ca.Pin()}, config.Credentials{CAPin: ca.Pin()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if code, _, errs := run(dir, append([]string{"--server", root.URL, "login", "--password-file", pwFile}, tc.flag...)...); code != ExitOK {
				t.Fatalf("login: exit %d: %s", code, errs)
			}
			saved, err := config.Load(dir)
			if err != nil || saved.CA != tc.saved.CA || saved.CAPin != tc.saved.CAPin || saved.Server != root.URL {
				t.Fatalf("saved %+v, %v; want the CA saved with the server", saved, err)
			}
			if code, _, errs := run(dir, "token", "list"); code != ExitOK {
				t.Errorf("token list with the saved CA: exit %d: %s", code, errs)
			}
			// The same trust, another server: a man in the middle.
			code, _, errs := run(dir, append([]string{"--server", mitm.URL, "login", "--password-file", pwFile}, tc.flag...)...)
			if code != ExitError || !strings.Contains(errs, "refused "+mitm.URL+": the server's certificate is not issued by the trusted CA") ||
				!strings.Contains(errs, ca.Pin()) || !strings.Contains(errs, "presented "+other.Pin()) {
				t.Errorf("login to a man in the middle: exit %d, stderr %q; want refused, naming both pins", code, errs)
			}
			if again, _ := config.Load(dir); again == nil || again.Server != root.URL || again.Token != saved.Token {
				t.Errorf("the saved login changed after a refused one: %+v", again)
			}
		})
	}
	code, _, errs := run(t.TempDir(), "--server", root.URL, "login", "--password-file", pwFile)
	if code != ExitError || !strings.Contains(errs, "unknown authority") || !strings.Contains(errs, "--ca-file") {
		t.Errorf("login without a CA: exit %d, stderr %q; want a hint to give --ca-file", code, errs)
	}
	if code, _, errs := run(t.TempDir(), "--ca-pin", "sha256:12", "status"); code != ExitUsage || !strings.Contains(errs, "--ca-pin") {
		t.Errorf("a bad pin: exit %d, stderr %q; want a usage error", code, errs)
	}
}
