package server

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
)

// TestServerNames: the serving certificate names the external URL's host,
// --tls-names, localhost and the listen address (every address of the host
// when it listens on all).
func TestServerNames(t *testing.T) {
	for _, tc := range []struct {
		name, external, listen string
		extra                  []string
		dns, ips, notIPs       []string
	}{
		{"one address", "https://root.example:10000", "192.0.2.7:10000", []string{"thicket-root", "198.51.100.1"},
			[]string{"localhost", "root.example", "thicket-root"}, []string{"127.0.0.1", "192.0.2.7", "198.51.100.1"}, nil},
		{"every address", "", "0.0.0.0:10000", nil, []string{"localhost"}, []string{"127.0.0.1"}, []string{"0.0.0.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := net.ResolveTCPAddr("tcp", tc.listen)
			l := serverNames(tc.external, addr, tc.extra)
			var ips []string
			for _, ip := range l.IPs {
				ips = append(ips, ip.String())
			}
			for _, d := range tc.dns {
				if !slices.Contains(l.DNSNames, d) {
					t.Errorf("DNS names %v lack %s", l.DNSNames, d)
				}
			}
			for _, ip := range tc.ips {
				if !slices.Contains(ips, ip) {
					t.Errorf("IPs %v lack %s", ips, ip)
				}
			}
			for _, ip := range tc.notIPs {
				if slices.Contains(ips, ip) {
					t.Errorf("IPs %v hold %s", ips, ip)
				}
			}
		})
	}
}

// TestRepinJoinToken: a default token file without the CA's pin (or with
// another's) is rewritten with it; one with it is left alone.
func TestRepinJoinToken(t *testing.T) {
	ca, err := pki.NewCA("root CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := pki.NewCA("other CA", time.Hour)
	pinned, _ := pki.JoinToken(ca.Pin(), "thj_secret")
	otherPinned, _ := pki.JoinToken(other.Pin(), "thj_secret")
	for _, tc := range []struct{ name, before, after string }{
		{"no pin", "thj_secret\n", pinned + "\n"},
		{"another CA's pin", otherPinned + "\n", pinned + "\n"},
		{"the pin", pinned + "\n", pinned + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), JoinTokenFile)
			if err := os.WriteFile(file, []byte(tc.before), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := repinJoinToken(file, ca.Pin(), slog.New(slog.DiscardHandler)); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(file)
			if string(b) != tc.after {
				t.Errorf("token file %q; want %q", b, tc.after)
			}
			if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", fi.Mode())
			}
		})
	}
	if err := repinJoinToken(filepath.Join(t.TempDir(), "missing"), ca.Pin(), slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("no file: %v", err)
	}
}
