package fetch_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
)

func TestParse(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in, url, path, digest, err string
	}{
		{in: "http://h/a.wasm", url: "http://h/a.wasm", path: "/a.wasm"},
		{in: "https://h:8/d/a.tar.gz#sha256=" + strings.ToUpper(sum), url: "https://h:8/d/a.tar.gz", path: "/d/a.tar.gz", digest: sum},
		{in: "file:///etc/passwd", err: `thing URL "file:///etc/passwd": want an http or https URL`},
		{in: "http:///nohost", err: "want an http or https URL"},
		{in: "http://h/a#sha256=zz", err: "fragment must be sha256=<64 hex digits>"},
		{in: "http://h/a#" + sum, err: "fragment must be sha256="},
		{in: "http://h/%zz", err: `thing URL "http://h/%zz"`},
	} {
		src, err := fetch.Parse("thing", tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %+v, %v; want error %q", tc.in, src, err, tc.err)
			}
			continue
		}
		if err != nil || src.URL != tc.url || src.Path != tc.path || src.Digest != tc.digest || src.Host == "" {
			t.Errorf("Parse(%q) = %+v, %v; want %s %s %s", tc.in, src, err, tc.url, tc.path, tc.digest)
		}
	}
}

func TestGet(t *testing.T) {
	body := []byte("0123456789")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write(body)
		case "/chunked": // no Content-Length: the limit applies while reading
			w.Write(body[:5])
			w.(http.Flusher).Flush()
			w.Write(body[5:])
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	good := fetch.SHA256(body)
	for _, tc := range []struct {
		name, path, pin string
		max             int64
		err             string
	}{
		{name: "ok", path: "/ok", max: 10},
		{name: "pinned", path: "/ok", pin: good, max: 10},
		{name: "chunked", path: "/chunked", max: 10},
		{name: "not found", path: "/nope", max: 10, err: "fetch thing " + srv.URL + "/nope: 404 Not Found"},
		{name: "over the limit", path: "/ok", max: 9, err: "10 bytes, over the limit of 9 bytes"},
		{name: "chunked over the limit", path: "/chunked", max: 9, err: "over the limit of 9 bytes"},
		{name: "wrong digest", path: "/ok", pin: strings.Repeat("0", 64), max: 10,
			err: "thing " + srv.URL + "/ok has sha256 " + good + ", want " + strings.Repeat("0", 64) + " (from the URL's fragment)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := srv.URL + tc.path
			if tc.pin != "" {
				code += "#sha256=" + tc.pin
			}
			src, err := fetch.Parse("thing", code)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			n, digest, err := fetch.Fetcher{Client: srv.Client(), MaxBytes: tc.max, What: "thing"}.Get(context.Background(), src, &buf)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Get: %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || n != 10 || digest != good || !bytes.Equal(buf.Bytes(), body) {
				t.Fatalf("Get = %d, %s, %v (%q)", n, digest, err, buf.Bytes())
			}
		})
	}
	src, _ := fetch.Parse("thing", "http://127.0.0.1:1/x")
	if _, _, err := (fetch.Fetcher{MaxBytes: 1, What: "thing"}).Get(context.Background(), src, &bytes.Buffer{}); err == nil || !strings.HasPrefix(err.Error(), "fetch thing: ") {
		t.Errorf("unreachable: %v", err)
	}
}
