package server

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDialHost: the manager's own client dials the broker where it
// listens. Issue 14, item 1: it dialled 127.0.0.1 whatever the listen
// address, and a broker bound to one address of a multi-homed host never
// answered there.
func TestDialHost(t *testing.T) {
	for _, tt := range []struct{ listen, want string }{
		{"", "127.0.0.1"},
		{"0.0.0.0", "127.0.0.1"},
		{"::", "127.0.0.1"}, // Go's "tcp" listeners on [::] take IPv4 too
		{"10.99.0.1", "10.99.0.1"},
		{"127.0.0.5", "127.0.0.5"},
		{"fd00::1", "fd00::1"},
		{"broker.example", "broker.example"},
	} {
		if got := dialHost(tt.listen); got != tt.want {
			t.Errorf("dialHost(%q) = %q, want %q", tt.listen, got, tt.want)
		}
	}
}

// TestManagerPassword: the broker admits the manager's own client with its
// password only (compared in constant time), never a prefix or an empty one.
func TestManagerPassword(t *testing.T) {
	a := &authenticator{password: "mgr-secret"}
	for _, tt := range []struct {
		pw string
		ok bool
	}{{"mgr-secret", true}, {"mgr-secre", false}, {"mgr-secret2", false}, {"", false}, {"MGR-SECRET", false}} {
		p, ok := a.Authenticate(managerUser, []byte(tt.pw), nil)
		if ok != tt.ok || (ok && !p.Manager) {
			t.Errorf("Authenticate(manager, %q) = %+v, %v; want ok %v", tt.pw, p, ok, tt.ok)
		}
	}
}

// TestBadConfig: a node certificate lifetime too short to renew in, or a
// negative drain timeout, is refused before anything starts (the data dir
// is not even made).
func TestBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"node certificate lifetime", Config{NodeCertTTL: 5 * time.Second}, "--node-cert-ttl 5s: at least 10s"},
		{"negative drain timeout", Config{DrainTimeout: -time.Second}, "--drain-timeout -1s: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir() + "/data"
			cfg := tt.cfg
			cfg.DataDir, cfg.NodeGrace, cfg.ReportEvery = dir, 3*time.Second, time.Second
			err := Run(t.Context(), cfg, slog.New(slog.DiscardHandler), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run: %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("the data dir was made: %v", err)
			}
		})
	}
}
