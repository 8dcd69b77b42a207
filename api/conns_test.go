package api

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer answers every call after a short while (so that parallel
// calls overlap) and counts the connections clients open to it.
func countingServer(t *testing.T, cert *tls.Certificate) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(20 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	if cert != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, &conns
}

// TestParallelCallsReuseConnections: a client making 16 calls at once,
// again and again, opens its 16 connections (TLS handshakes) once and
// reuses them: its default transport keeps more than Go's 2 idle
// connections per host, with a CA option, with an HTTP client without a
// transport, and over plain HTTP. A caller's own transport keeps its
// settings.
func TestParallelCallsReuseConnections(t *testing.T) {
	ca := newTestCA(t, "root CA")
	const parallel = 16
	for _, tc := range []struct {
		name string
		tls  bool
		cfg  Config
	}{
		{"CA PEM", true, Config{CAPEM: ca.pem}},
		{"CA pin, HTTP client without a transport", true, Config{CAPin: ca.pin, HTTPClient: &http.Client{Timeout: 10 * time.Second}}},
		{"plain HTTP", false, Config{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cert *tls.Certificate
			if tc.tls {
				cert = &ca.server
			}
			srv, conns := countingServer(t, cert)
			tc.cfg.Address = srv.URL
			c := NewClient(tc.cfg)
			round := func() {
				t.Helper()
				var wg sync.WaitGroup
				errs := make(chan error, parallel)
				for range parallel {
					wg.Go(func() { errs <- c.Health(context.Background()) })
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			round()
			first := conns.Load()
			for range 3 {
				round()
			}
			// Go's default of 2 idle connections per host: 14 new ones a round.
			n := conns.Load() - first
			t.Logf("first round: %d connections; 3 more rounds: %d new", first, n)
			if n > 2 {
				t.Errorf("3 more rounds of %d parallel calls opened %d new connections (the first round %d), want them reused", parallel, n, first)
			}
		})
	}

	own := &http.Transport{MaxIdleConnsPerHost: 1}
	c := NewClient(Config{Address: "https://127.0.0.1:1", CAPEM: ca.pem, HTTPClient: &http.Client{Transport: own}})
	if got := c.http.Transport.(*http.Transport); got == own || got.MaxIdleConnsPerHost != 1 || got.TLSClientConfig == nil {
		t.Errorf("a caller's transport: the client's is %p with %d idle per host (TLS %v), want a copy of %p with 1", got, got.MaxIdleConnsPerHost, got.TLSClientConfig != nil, own)
	}
}
