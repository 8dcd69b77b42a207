package dashboard

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	var r io.Reader = res.Body
	if res.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIndex(t *testing.T) {
	for _, p := range []string{"/", "/index.html"} {
		res := serve(t, http.MethodGet, p, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", p, res.StatusCode)
		}
		for k, want := range map[string]string{
			"Content-Type":           "text/html; charset=utf-8",
			"Cache-Control":          "no-cache",
			"X-Content-Type-Options": "nosniff",
			"X-Frame-Options":        "DENY",
		} {
			if got := res.Header.Get(k); got != want {
				t.Errorf("GET %s: %s = %q, want %q", p, k, got, want)
			}
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self' 'sha256-") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: CSP %q", p, csp)
		}
		page := body(t, res)
		if strings.Contains(page, importMapMarker) || !strings.Contains(page, `<script type="importmap">`) {
			t.Errorf("GET %s: import map not rendered", p)
		}
		if !regexp.MustCompile(`href="app\.css\?v=[0-9a-f]{12}"`).MatchString(page) ||
			!regexp.MustCompile(`src="js/app\.js\?v=[0-9a-f]{12}"`).MatchString(page) {
			t.Errorf("GET %s: asset URLs are not versioned:\n%s", p, page)
		}
	}
}

// TestImportMap checks that every module is in the import map with its
// current hash, and that the CSP allows exactly that inline import map.
func TestImportMap(t *testing.T) {
	s := Handler().(*site)
	page := string(s.index.body)
	m := regexp.MustCompile(`(?s)<script type="importmap">(.*?)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no import map")
	}
	var im struct{ Imports map[string]string }
	if err := json.Unmarshal([]byte(m[1]), &im); err != nil {
		t.Fatal(err)
	}
	for name, a := range s.assets {
		if path.Ext(name) != ".js" {
			continue
		}
		if got, want := im.Imports["./"+name], "./"+name+"?v="+a.hash; got != want {
			t.Errorf("import map: %s -> %q, want %q", name, got, want)
		}
	}
	if _, ok := im.Imports["./js/app.js"]; !ok {
		t.Error("import map lacks js/app.js")
	}
}

// TestModuleImports checks, without a browser, that every relative import
// of every module names an embedded file.
func TestModuleImports(t *testing.T) {
	importRE := regexp.MustCompile(`(?m)^\s*(?:import|export)\b[^'";]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]`)
	s := Handler().(*site)
	n := 0
	for name, a := range s.assets {
		if path.Ext(name) != ".js" {
			continue
		}
		for _, m := range importRE.FindAllStringSubmatch(string(a.body), -1) {
			spec := m[1] + m[2]
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
				t.Errorf("%s imports %q: only relative imports are served", name, spec)
				continue
			}
			target := path.Join(path.Dir(name), spec)
			if _, ok := s.assets[target]; !ok {
				t.Errorf("%s imports %q: no such file %s", name, spec, target)
			}
			n++
		}
	}
	if n < 10 {
		t.Errorf("found only %d imports; is the pattern broken?", n)
	}
}

func TestAssets(t *testing.T) {
	s := Handler().(*site)
	tests := []struct {
		path, contentType string
	}{
		{"/app.css", "text/css; charset=utf-8"},
		{"/js/app.js", "text/javascript; charset=utf-8"},
		{"/js/pages/apps.js", "text/javascript; charset=utf-8"},
		{"/favicon.svg", "image/svg+xml"},
	}
	for _, tt := range tests {
		a := s.assets[strings.TrimPrefix(tt.path, "/")]
		if a == nil {
			t.Fatalf("%s is not embedded", tt.path)
		}
		// Unversioned: revalidate.
		res := serve(t, http.MethodGet, tt.path, nil)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != tt.contentType || res.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: %d %q %q", tt.path, res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
		}
		if got := body(t, res); got != string(a.body) {
			t.Errorf("GET %s: body differs", tt.path)
		}
		// Current version: immutable.
		res = serve(t, http.MethodGet, tt.path+"?v="+a.hash, nil)
		if cc := res.Header.Get("Cache-Control"); cc != cacheImmutable {
			t.Errorf("GET %s?v=current: Cache-Control %q", tt.path, cc)
		}
		// Stale version: today's file, revalidated.
		res = serve(t, http.MethodGet, tt.path+"?v=000000000000", nil)
		if cc := res.Header.Get("Cache-Control"); res.StatusCode != http.StatusOK || cc != cacheRevalidate {
			t.Errorf("GET %s?v=stale: %d, Cache-Control %q", tt.path, res.StatusCode, cc)
		}
		// Conditional request.
		res = serve(t, http.MethodGet, tt.path, map[string]string{"If-None-Match": a.etag})
		if res.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match: %d", tt.path, res.StatusCode)
		}
	}
}

func TestGzip(t *testing.T) {
	s := Handler().(*site)
	a := s.assets["js/api.js"]
	if a.gz == nil {
		t.Fatal("js/api.js is not precompressed")
	}
	res := serve(t, http.MethodGet, "/js/api.js", map[string]string{"Accept-Encoding": "br, gzip"})
	if res.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("not gzipped: %v", res.Header)
	}
	if got := body(t, res); got != string(a.body) {
		t.Error("gzipped body differs")
	}
	etag := res.Header.Get("ETag")
	if etag == a.etag {
		t.Error("gzip and identity share an ETag")
	}
	if res := serve(t, http.MethodGet, "/js/api.js", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional gzip request: %d", res.StatusCode)
	}
	res = serve(t, http.MethodGet, "/js/api.js", map[string]string{"Accept-Encoding": "gzip;q=0"})
	if res.Header.Get("Content-Encoding") != "" {
		t.Error("gzip sent although refused")
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	for _, p := range []string{"/nope", "/js/", "/web/index.html", "/../go.mod", "/js/nope.js"} {
		if res := serve(t, http.MethodGet, p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
	res := serve(t, http.MethodPost, "/", nil)
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
	res = serve(t, http.MethodHead, "/app.css", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Length") == "" || len(body(t, res)) != 0 {
		t.Errorf("HEAD /app.css: %d, length %q", res.StatusCode, res.Header.Get("Content-Length"))
	}
}

// TestNoInlineCode keeps the page within its CSP: no inline scripts, event
// handler attributes or style attributes in the embedded HTML, and no
// innerHTML in the modules (text goes in as text).
func TestNoInlineCode(t *testing.T) {
	err := fs.WalkDir(webFS, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(webFS, p)
		switch path.Ext(p) {
		case ".html":
			if regexp.MustCompile(`(?i)<script(?:\s+type="module")?>|\son[a-z]+=|\sstyle=`).Match(b) {
				t.Errorf("%s has inline code or style", p)
			}
		case ".js":
			if bytes.Contains(b, []byte("innerHTML")) || bytes.Contains(b, []byte("insertAdjacentHTML")) || bytes.Contains(b, []byte("eval(")) {
				t.Errorf("%s builds HTML from strings", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
