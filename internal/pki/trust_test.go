package pki_test

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
)

// TestCAClientAndNaming: CAClient trusts a server that sends only its own
// certificate (no CA in the chain) when it holds that server's CA, and
// refuses one of another CA or for another address, naming what it
// expected; PinnedClientNaming's refusal names the expected and the
// presented pins.
func TestCAClientAndNaming(t *testing.T) {
	leaf := pki.Leaf{Name: "server", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true, Validity: time.Hour}
	ca, cert, err := pki.NewCAWithLeaf("real CA", leaf)
	if err != nil {
		t.Fatal(err)
	}
	alone := cert
	alone.Certificate = cert.Certificate[:1] // as Mosquitto sends it
	other, otherCert, err := pki.NewCAWithLeaf("other CA", leaf)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := ca.Issue(pki.Leaf{Name: "elsewhere", IPs: []net.IP{net.IPv4(192, 0, 2, 1)}, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	do := func(url string, tc *tls.Config) error {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	caClient, err := pki.CAClient(ca.PEM, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		server tls.Certificate
		client *tls.Config
		want   []string // in the error; none: success
	}{
		{"CA client, chain without the CA", alone, caClient, nil},
		{"CA client, chain with the CA", cert, caClient, nil},
		{"CA client, another CA", otherCert, caClient, []string{"not issued by the pinned CA", `issued by "other CA"`, "expected a CA of " + ca.Pin()}},
		{"CA client, another address", elsewhere, caClient, []string{"not issued by the pinned CA", "127.0.0.1"}},
		{"naming pinned client", cert, pki.PinnedClientNaming(ca.Pin(), "127.0.0.1"), nil},
		{"naming pinned client, another CA", otherCert, pki.PinnedClientNaming(ca.Pin(), "127.0.0.1"),
			[]string{"expected " + ca.Pin(), "presented " + other.Pin()}},
		{"naming pinned client, no CA presented", alone, pki.PinnedClientNaming(ca.Pin(), "127.0.0.1"),
			[]string{"presented none (the server sent no CA certificate)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := do(serve(t, tc.server).URL, tc.client)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, pki.ErrPinMismatch) {
				t.Fatalf("got %v, want ErrPinMismatch", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := pki.CAClient([]byte("no PEM here"), "h"); err == nil {
		t.Error("CAClient took a bundle without a certificate")
	}
}
