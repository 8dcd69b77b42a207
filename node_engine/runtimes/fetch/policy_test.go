package fetch_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
)

func TestCheckAddr(t *testing.T) {
	lan := &fetch.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	for _, tc := range []struct {
		addr           string
		deflt, withLAN string // "" allowed, else a substring of the error
	}{
		{"8.8.8.8", "", ""},
		{"2001:4860:4860::8888", "", ""},
		{"127.0.0.1", "loopback", "loopback"},
		{"::1", "loopback", ""},
		{"::ffff:127.0.0.1", "loopback", "loopback"},
		{"10.1.2.3", "private", ""},
		{"192.168.1.1", "private", "private"},
		{"172.16.0.1", "private", "private"},
		{"fd00::1", "private", "private"},
		{"169.254.169.254", "link-local", "link-local"},
		{"fe80::1", "link-local", "link-local"},
		{"0.0.0.0", "unspecified", "unspecified"},
		{"::", "unspecified", "unspecified"},
		{"224.0.0.1", "link-local", "link-local"},
		{"239.1.1.1", "multicast", "multicast"},
		{"255.255.255.255", "not a unicast", "not a unicast"},
		{"100.64.0.1", "special-purpose", "special-purpose"},
		{"0.1.2.3", "special-purpose", "special-purpose"},
	} {
		a := netip.MustParseAddr(tc.addr)
		for _, c := range []struct {
			p    *fetch.Policy
			want string
		}{{&fetch.Policy{}, tc.deflt}, {lan, tc.withLAN}} {
			err := c.p.CheckAddr(a)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("%s (networks %v): %v, want allowed", tc.addr, c.p.Networks, err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, fetch.ErrRefused)):
				t.Errorf("%s (networks %v): %v, want refused as %q", tc.addr, c.p.Networks, err, c.want)
			}
		}
	}
}

func TestCheckURL(t *testing.T) {
	pin := "#sha256=" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		p    *fetch.Policy
		url  string
		err  string
	}{
		{"pinned public", &fetch.Policy{}, "https://code.example.com/a.wasm" + pin, ""},
		{"unpinned", &fetch.Policy{}, "https://code.example.com/a.wasm", "no #sha256=<hex> pin"},
		{"unpinned allowed", &fetch.Policy{AllowUnpinned: true}, "https://code.example.com/a.wasm", ""},
		{"loopback literal", &fetch.Policy{}, "http://127.0.0.1:8000/a.wasm" + pin, "127.0.0.1 is a loopback address"},
		{"metadata service", &fetch.Policy{}, "http://169.254.169.254/latest" + pin, "link-local"},
		{"IPv6 literal", &fetch.Policy{}, "http://[::1]:80/a.wasm" + pin, "loopback"},
		{"under a prefix", &fetch.Policy{URLPrefixes: []string{"https://code.example.com/wasm/"}}, "https://code.example.com/wasm/a.wasm" + pin, ""},
		{"outside the prefixes", &fetch.Policy{URLPrefixes: []string{"https://code.example.com/wasm/"}}, "https://code.example.com/other/a.wasm" + pin, "not under an allowed URL prefix"},
	} {
		src, err := fetch.Parse("module", tc.url)
		if err != nil {
			t.Fatal(err)
		}
		err = tc.p.CheckURL("module", src)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: CheckURL(%s) = %v, want %q", tc.name, tc.url, err, tc.err)
		}
	}
}

// TestPolicyOnTheWire: a download from a loopback server is refused when
// the name is resolved (localhost) and, with the name check passed by,
// again at the connection (what defeats DNS rebinding); an allowed network
// passes; a redirect out of the allowed URL prefixes is refused.
func TestPolicyOnTheWire(t *testing.T) {
	body := []byte("module bytes")
	mux := http.NewServeMux()
	mux.HandleFunc("/a.wasm", func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere/a.wasm", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere/a.wasm", func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':'):]
	ctx := context.Background()
	get := func(p *fetch.Policy, client *http.Client, url string) error {
		src, err := fetch.Parse("module", url)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, _, err = fetch.Fetcher{Client: client, MaxBytes: 1 << 20, What: "module", Policy: p}.Get(ctx, src, &buf)
		return err
	}

	strict := &fetch.Policy{AllowUnpinned: true}
	if err := get(strict, strict.Client(10*time.Second), "http://localhost"+port+"/a.wasm"); err == nil ||
		!errors.Is(err, fetch.ErrRefused) || !strings.Contains(err.Error(), "localhost resolves to") {
		t.Errorf("localhost: %v, want refused at resolution", err)
	}
	// The connection itself is checked, whatever the name said.
	resp, err := strict.Client(10 * time.Second).Get(srv.URL + "/a.wasm")
	if err == nil {
		resp.Body.Close()
		t.Errorf("the policy's client connected to %s", srv.URL)
	} else if !errors.Is(err, fetch.ErrRefused) {
		t.Errorf("dial to %s: %v, want ErrRefused", srv.URL, err)
	}

	local := &fetch.Policy{AllowUnpinned: true, Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		URLPrefixes: []string{srv.URL + "/a.wasm", srv.URL + "/away"}}
	if err := get(local, local.Client(10*time.Second), srv.URL+"/a.wasm"); err != nil {
		t.Errorf("allowed network: %v", err)
	}
	if err := get(local, local.Client(10*time.Second), srv.URL+"/away"); err == nil || !strings.Contains(err.Error(), "not under an allowed URL prefix") {
		t.Errorf("redirect out of the prefixes: %v", err)
	}
}

// TestPolicyBoundsConcurrentDownloads: with MaxConcurrent 2, five
// downloads at once reach the server two at a time.
func TestPolicyBoundsConcurrentDownloads(t *testing.T) {
	var now, most atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		defer now.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
		io.WriteString(w, "x")
	}))
	defer srv.Close()
	p := &fetch.Policy{AllowUnpinned: true, MaxConcurrent: 2, Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	src, err := fetch.Parse("module", srv.URL+"/m.wasm")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			if _, _, err := (fetch.Fetcher{Client: p.Client(10 * time.Second), MaxBytes: 10, What: "module", Policy: p}).Get(context.Background(), src, &buf); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if m := most.Load(); m != 2 {
		t.Errorf("at most %d downloads at once, want 2", m)
	}
}
