package joblist

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
)

func TestLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"cam-1\ncam-2\n", []string{"cam-1", "cam-2"}, false},
		{"  cam-1 \r\n\n\tcam 2\n", []string{"cam-1", "cam 2"}, false},
		{"", []string{}, false},
		{strings.Repeat("x", 70000) + "\n", nil, true},
	} {
		got, err := Lines([]byte(tc.in))
		if (err != nil) != tc.err || (!tc.err && !slices.Equal(got, tc.want)) {
			t.Errorf("Lines(%q) = %q, %v", tc.in, got, err)
		}
	}
}

// TestRead: a list is fetched from an allowed network, refused from a
// private address by default, checked against its pin, and bounded.
func TestRead(t *testing.T) {
	body := "cam-1\ncam-2\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write([]byte(strings.Repeat("cam\n", MaxBytes/4+1)))
		case "/missing":
			http.NotFound(w, r)
		default:
			w.Write([]byte(body))
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	got, err := New(nil).Read(ctx, srv.URL+"/cams.txt")
	if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), "thicket-root --jobs-allow-net") || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("a loopback URL by default: %q, %v", got, err)
	}
	local := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	if got, err := local.Read(ctx, srv.URL+"/cams.txt"); err != nil || !slices.Equal(got, []string{"cam-1", "cam-2"}) {
		t.Errorf("allowed: %q, %v", got, err)
	}
	pin := fetch.SHA256([]byte(body))
	if _, err := local.Read(ctx, srv.URL+"/cams.txt#sha256="+pin); err != nil {
		t.Errorf("pinned: %v", err)
	}
	if _, err := local.Read(ctx, srv.URL+"/cams.txt#sha256="+strings.Repeat("0", 64)); err == nil {
		t.Error("a wrong pin was accepted")
	}
	for _, path := range []string{"/big", "/missing"} {
		if _, err := local.Read(ctx, srv.URL+path); !errors.Is(err, ErrFetch) {
			t.Errorf("%s: %v", path, err)
		}
	}
	for _, u := range []string{"ftp://example.com/x", "file:///etc/passwd", "/etc/passwd", "not a url"} {
		if _, err := local.Read(ctx, u); err == nil {
			t.Errorf("%s was read", u)
		}
	}
}
