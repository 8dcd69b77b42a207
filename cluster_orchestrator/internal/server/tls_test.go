package server

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/pki"
)

const (
	pinA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	pinB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// TestNodeJoinToken: the token file holds the secret with the CA's pin,
// also after an upgrade from a file without one or a change of CA, and
// keeps its secret; plain-text mode leaves it alone.
func TestNodeJoinToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, NodeJoinTokenFile)
	cfg := Config{DataDir: dir}
	first, err := nodeJoinToken(cfg, pinA)
	if err != nil {
		t.Fatal(err)
	}
	pin, secret, err := pki.ParseJoinToken(first)
	if err != nil || pin != pinA || !strings.HasPrefix(secret, "thn_") {
		t.Fatalf("token %q: pin %q secret %q %v", first, pin, secret, err)
	}
	if b, _ := os.ReadFile(file); strings.TrimSpace(string(b)) != first {
		t.Errorf("file holds %q, want %q", b, first)
	}
	for _, tc := range []struct {
		name, before, pin, want string
	}{
		{"same CA", first, pinA, first},
		{"new CA", first, pinB, "thk1" + strings.TrimPrefix(pinB, "sha256:") + "::" + secret},
		{"a file from before pins", secret, pinA, first},
		{"plain text", secret, "", secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(tc.before+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := nodeJoinToken(cfg, tc.pin)
			b, _ := os.ReadFile(file)
			if err != nil || got != tc.want || strings.TrimSpace(string(b)) != tc.want {
				t.Errorf("got %q (file %q) %v, want %q", got, b, err, tc.want)
			}
		})
	}
	// An operator's token gets the pin too, and the file holds it so.
	opDir := t.TempDir()
	got, err := nodeJoinToken(Config{DataDir: opDir, NodeJoinToken: "mine"}, pinA)
	want := "thk1" + strings.TrimPrefix(pinA, "sha256:") + "::mine"
	b, _ := os.ReadFile(filepath.Join(opDir, NodeJoinTokenFile))
	if err != nil || got != want || strings.TrimSpace(string(b)) != want {
		t.Errorf("operator's token: %q (file %q) %v, want %q", got, b, err, want)
	}
}

// TestExternalBrokerTLS: a plain external broker needs the development
// flag; an mqtts:// one is verified with --mqtt-ca-file, whose PEM nodes
// get.
func TestExternalBrokerTLS(t *testing.T) {
	ca, err := pki.NewCA("broker CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url string
		cfg       Config
		tls       bool
		pem       string
		err       string
	}{
		{name: "plain refused", url: "tcp://b:1883", err: "--insecure-plaintext"},
		{name: "plain in development", url: "tcp://b:1883", cfg: Config{InsecurePlaintext: true}},
		{name: "mqtts with a CA", url: "mqtts://b:8883", cfg: Config{MQTTCAFile: caFile}, tls: true, pem: string(ca.PEM)},
		{name: "mqtts, system roots", url: "mqtts://b:8883"},
		{name: "missing CA file", url: "mqtts://b:8883", cfg: Config{MQTTCAFile: caFile + ".x"}, err: "--mqtt-ca-file"},
		{name: "CA file without a certificate", url: "mqtts://b:8883", cfg: Config{MQTTCAFile: junk}, err: "no certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, pem, err := externalBrokerTLS(tc.url, tc.cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || (c != nil) != tc.tls || pem != tc.pem {
				t.Fatalf("tls %v pem %q err %v", c != nil, pem, err)
			}
		})
	}
}

// TestServerNames: the certificate covers the advertised and listen
// addresses, --tls-san and loopback, never the unspecified address.
func TestServerNames(t *testing.T) {
	dns, ips := serverNames(Config{AdvertiseAddr: "192.0.2.7", Listen: "0.0.0.0:10100", MQTTListen: "[2001:db8::1]:10003",
		TLSSANs: []string{"cluster.example", "198.51.100.1"}})
	var got []string
	for _, ip := range ips {
		got = append(got, ip.String())
	}
	for _, want := range []string{"192.0.2.7", "2001:db8::1", "198.51.100.1", "127.0.0.1", "::1"} {
		if !slices.Contains(got, want) {
			t.Errorf("IPs %v lack %s", got, want)
		}
	}
	if slices.ContainsFunc(ips, net.IP.IsUnspecified) {
		t.Errorf("IPs %v hold the unspecified address", got)
	}
	if !slices.Contains(dns, "cluster.example") || !slices.Contains(dns, "localhost") {
		t.Errorf("DNS names %v", dns)
	}
}
