// Package dashboard serves Thicket's web dashboard: static ES modules, CSS
// and an index page, embedded into the binary. The dashboard talks to the
// root's REST API on the same origin (/api/...) with the user's bearer token;
// it has no server-side logic of its own.
//
// Mount Handler on every path that the API does not claim:
//
//	mux.Handle("/api/", api)
//	mux.Handle("/", dashboard.Handler())
//
// Caching: every asset URL in index.html carries its content hash
// (app.css?v=1a2b3c4d5e6f), and an import map gives every ES module such a
// URL too, so a browser may keep versioned responses for a year while
// index.html itself is revalidated on every load (no-cache with an ETag).
// An upgrade of the binary therefore reaches browsers at their next page
// load, and never mixes old and new modules.
package dashboard

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"
)

//go:embed web
var webFS embed.FS

// importMapMarker in web/index.html is replaced by the generated import map.
const importMapMarker = "<!--importmap-->"

// contentTypes are set explicitly so that the answer does not depend on the
// host's mime.types.
var contentTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".json":  "application/json",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".woff2": "font/woff2",
	".txt":   "text/plain; charset=utf-8",
}

const (
	cacheRevalidate = "no-cache"
	cacheImmutable  = "public, max-age=31536000, immutable"
)

// asset is one file, ready to serve.
type asset struct {
	body        []byte
	gz          []byte // gzip of body, nil when it does not pay
	contentType string
	hash        string // first 12 hex digits of the SHA-256 of body
	etag        string
}

type site struct {
	assets map[string]*asset // by URL path without the leading slash
	index  *asset
	csp    string
}

var (
	buildOnce sync.Once
	built     *site
	buildErr  error
)

// Handler serves the dashboard: index.html at "/" (and "/index.html"), the
// embedded files under their paths, 404 for anything else. Only GET and
// HEAD are allowed.
func Handler() http.Handler {
	buildOnce.Do(func() { built, buildErr = build() })
	if buildErr != nil {
		// The embedded files are fixed at compile time and checked by the
		// package's tests, so this cannot happen in a released binary.
		panic("dashboard: " + buildErr.Error())
	}
	return built
}

func build() (*site, error) {
	root, err := fs.Sub(webFS, "web")
	if err != nil {
		return nil, err
	}
	s := &site{assets: map[string]*asset{}}
	var indexSrc []byte
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		if p == "index.html" {
			indexSrc = b
			return nil
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("%s: no content type for %q", p, path.Ext(p))
		}
		s.assets[p] = newAsset(b, ct)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if indexSrc == nil {
		return nil, fmt.Errorf("web/index.html is missing")
	}
	index, importMap, err := renderIndex(string(indexSrc), s.assets)
	if err != nil {
		return nil, err
	}
	s.index = newAsset([]byte(index), contentTypes[".html"])
	sum := sha256.Sum256([]byte(importMap))
	s.csp = strings.Join([]string{
		"default-src 'self'",
		"script-src 'self' 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'",
		"style-src 'self'",
		"img-src 'self' data:",
		"connect-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; ")
	return s, nil
}

func newAsset(b []byte, contentType string) *asset {
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])[:12]
	a := &asset{body: b, contentType: contentType, hash: h, etag: `"` + h + `"`}
	if !strings.HasPrefix(contentType, "image/png") && !strings.HasPrefix(contentType, "font/") && len(b) > 512 {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		if buf.Len() < len(b)*9/10 {
			a.gz = buf.Bytes()
		}
	}
	return a
}

// renderIndex gives every asset reference in index.html its versioned URL
// and puts an import map for all ES modules in place of importMapMarker. It
// returns the page and the import map's JSON (for the CSP hash).
func renderIndex(src string, assets map[string]*asset) (string, string, error) {
	if !strings.Contains(src, importMapMarker) {
		return "", "", fmt.Errorf("web/index.html lacks %s", importMapMarker)
	}
	names := make([]string, 0, len(assets))
	for name := range assets {
		names = append(names, name)
	}
	sort.Strings(names)
	imports := map[string]string{}
	for _, name := range names {
		a := assets[name]
		versioned := name + "?v=" + a.hash
		src = strings.ReplaceAll(src, `"`+name+`"`, `"`+versioned+`"`)
		if path.Ext(name) == ".js" {
			imports["./"+name] = "./" + versioned
		}
	}
	m, err := json.Marshal(map[string]any{"imports": imports})
	if err != nil {
		return "", "", err
	}
	importMap := "\n" + string(m) + "\n"
	src = strings.Replace(src, importMapMarker, `<script type="importmap">`+importMap+`</script>`, 1)
	return src, importMap, nil
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	var a *asset
	cache := cacheRevalidate
	switch name {
	case "", "index.html":
		a = s.index
		h.Set("Content-Security-Policy", s.csp)
		h.Set("X-Frame-Options", "DENY")
	default:
		a = s.assets[name]
		if a == nil {
			h.Set("Cache-Control", cacheRevalidate)
			http.Error(w, "404 page not found", http.StatusNotFound)
			return
		}
		// Only the current version may be kept: a stale ?v= (a page
		// loaded before an upgrade) gets today's file, revalidated.
		if r.URL.Query().Get("v") == a.hash {
			cache = cacheImmutable
		}
	}
	h.Set("Cache-Control", cache)
	h.Set("Content-Type", a.contentType)
	body, etag := a.body, a.etag
	if a.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			// Each representation has its own strong validator.
			body, etag = a.gz, `"`+a.hash+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		h.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// etagMatch reports whether an If-None-Match header names etag (weakly).
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
