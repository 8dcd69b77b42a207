package httpapi

import (
	"net/http"
	"net/netip"
	"testing"
)

// TestClientAddr: X-Forwarded-For names the client only behind a trusted
// proxy, and then the last address that is no trusted proxy (what comes
// before it the client may have written itself).
func TestClientAddr(t *testing.T) {
	g := newPasswordGuard()
	g.trusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32"), netip.MustParsePrefix("192.168.0.0/16")}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"direct, no header", "203.0.113.5:4000", nil, "203.0.113.5"},
		{"direct, header ignored", "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"v4-mapped peer", "[::ffff:203.0.113.5]:4000", nil, "203.0.113.5"},
		{"trusted proxy, one hop", "10.0.0.1:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"trusted proxy, forged first hop", "10.0.0.1:4000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"two trusted proxies", "10.0.0.1:4000", []string{"198.51.100.1, 192.168.3.4"}, "198.51.100.1"},
		{"headers on several lines", "10.0.0.1:4000", []string{"1.2.3.4", "198.51.100.1"}, "198.51.100.1"},
		{"trusted proxy, no header", "10.0.0.1:4000", nil, "10.0.0.1"},
		{"trusted proxy, garbled header", "10.0.0.1:4000", []string{"198.51.100.1, not-an-ip"}, "10.0.0.1"},
		{"only trusted hops", "10.0.0.1:4000", []string{"192.168.1.1"}, "192.168.1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for _, h := range tc.xff {
				r.Header.Add("X-Forwarded-For", h)
			}
			if got := g.clientAddr(r); got.String() != tc.want {
				t.Errorf("clientAddr = %s, want %s", got, tc.want)
			}
		})
	}
	g.trusted = nil
	r := &http.Request{RemoteAddr: "10.0.0.1:4000", Header: http.Header{"X-Forwarded-For": {"198.51.100.1"}}}
	if got := g.clientAddr(r); got.String() != "10.0.0.1" {
		t.Errorf("no trusted proxies: clientAddr = %s, want the peer", got)
	}
}
