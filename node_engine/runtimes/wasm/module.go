package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
)

// compiledModule is one module content compiled, shared by every instance
// that runs it.
type compiledModule struct {
	digest string // hex SHA-256 of the content
	cm     wazero.CompiledModule
	refs   int // instances holding it (under Runtime.mu)
}

// moduleSource is a parsed spec.Code.
type moduleSource struct {
	url    string // without the fragment
	name   string // file name of the URL path: argv[0]
	digest string // wanted hex SHA-256, "" if not pinned
}

// parseCode parses an instance's code: an http(s) URL, optionally with a
// fragment sha256=<64 hex digits>.
func parseCode(code string) (moduleSource, error) {
	if code == "" {
		return moduleSource{}, errors.New("no module URL (code)")
	}
	u, err := url.Parse(code)
	if err != nil {
		return moduleSource{}, fmt.Errorf("module URL %q: %w", code, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return moduleSource{}, fmt.Errorf("module URL %q: want an http or https URL", code)
	}
	var src moduleSource
	if u.Fragment != "" {
		hexDigest, ok := strings.CutPrefix(u.Fragment, "sha256=")
		if b, err := hex.DecodeString(hexDigest); !ok || err != nil || len(b) != sha256.Size {
			return moduleSource{}, fmt.Errorf("module URL %q: fragment must be sha256=<64 hex digits>", code)
		}
		src.digest = strings.ToLower(hexDigest)
	}
	u.Fragment, u.RawFragment = "", ""
	src.url = u.String()
	src.name = path.Base(u.Path)
	if src.name == "." || src.name == "/" {
		src.name = u.Host
	}
	return src, nil
}

// acquire returns the compiled module of code, holding a reference for the
// caller (release it with release). The module is downloaded unless cached
// on disk and compiled unless compiled in memory already.
func (r *Runtime) acquire(ctx context.Context, code string) (*compiledModule, moduleSource, error) {
	src, err := parseCode(code)
	if err != nil {
		return nil, src, err
	}
	// Fast path: the content last cached for this URL is compiled.
	r.mu.Lock()
	if d, ok := r.urlDigest[src.url]; ok && (src.digest == "" || src.digest == d) {
		if m := r.compiled[d]; m != nil {
			m.refs++
			r.mu.Unlock()
			return m, src, nil
		}
	}
	r.mu.Unlock()
	data, digest, err := r.moduleData(ctx, src)
	if err != nil {
		return nil, src, err
	}
	r.mu.Lock()
	r.urlDigest[src.url] = digest
	r.mu.Unlock()
	cm, err := r.compile(ctx, src, data, digest)
	return cm, src, err
}

// release drops a reference to m; the last one closes it. Caller holds mu.
func (r *Runtime) release(m *compiledModule) {
	m.refs--
	if m.refs > 0 {
		return
	}
	if r.compiled[m.digest] == m {
		delete(r.compiled, m.digest)
	}
	if err := m.cm.Close(context.Background()); err != nil {
		r.log.Warn("close compiled module", "digest", m.digest, "err", err)
	}
}

// compile returns the compiled module of data (whose digest is digest),
// with a reference held.
func (r *Runtime) compile(ctx context.Context, src moduleSource, data []byte, digest string) (*compiledModule, error) {
	unlock := r.compiles.Lock(digest)
	defer unlock()
	r.mu.Lock()
	if m := r.compiled[digest]; m != nil {
		m.refs++
		r.mu.Unlock()
		return m, nil
	}
	r.mu.Unlock()

	wz, err := r.engine()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	cm, err := wz.CompileModule(ctx, data)
	if err != nil {
		return nil, fmt.Errorf("compile module %s: %w", src.url, err)
	}
	took := time.Since(t0)
	if cm.ExportedFunctions()["_start"] == nil {
		_ = cm.Close(context.Background())
		return nil, fmt.Errorf("module %s exports no _start: not a WASI command", src.url)
	}
	r.log.Info("compiled module", "url", src.url, "sha256", digest, "bytes", len(data), "took", took.Round(time.Millisecond))
	m := &compiledModule{digest: digest, cm: cm, refs: 1}
	r.mu.Lock()
	r.compiled[digest] = m
	r.compilations++
	r.mu.Unlock()
	return m, nil
}

// moduleData returns the module at src (from the cache, else downloaded
// into it) and its hex SHA-256.
func (r *Runtime) moduleData(ctx context.Context, src moduleSource) ([]byte, string, error) {
	unlock := r.fetches.Lock(src.url)
	defer unlock()
	file := r.cachePath(src.url)
	data, err := os.ReadFile(file)
	switch {
	case err == nil && int64(len(data)) <= r.cfg.MaxModuleBytes:
		digest := sha256Hex(data)
		if src.digest == "" || digest == src.digest {
			return data, digest, nil
		}
		// The cached copy is not the pinned version: download it again.
		r.log.Info("cached module does not match its digest; downloading it again", "url", src.url, "cached", digest, "want", src.digest)
	case err == nil:
		// Cached under a larger limit: download (and so check) it again.
	case !errors.Is(err, os.ErrNotExist):
		return nil, "", fmt.Errorf("module cache: %w", err)
	}
	return r.download(ctx, src, file)
}

// download fetches src into file and returns its content and digest.
func (r *Runtime) download(ctx context.Context, src moduleSource, file string) ([]byte, string, error) {
	t0 := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.url, nil)
	if err != nil {
		return nil, "", fmt.Errorf("fetch module %s: %w", src.url, err)
	}
	r.mu.Lock()
	r.downloads++
	r.mu.Unlock()
	resp, err := r.cfg.HTTPClient.Do(req)
	if err != nil {
		// The client's error names the URL already.
		return nil, "", fmt.Errorf("fetch module: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("fetch module %s: %s", src.url, resp.Status)
	}
	max := r.cfg.MaxModuleBytes
	if resp.ContentLength > max {
		return nil, "", fmt.Errorf("fetch module %s: %d bytes, over the limit of %d bytes", src.url, resp.ContentLength, max)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, "", fmt.Errorf("fetch module %s: %w", src.url, err)
	}
	if int64(len(data)) > max {
		return nil, "", fmt.Errorf("fetch module %s: over the limit of %d bytes", src.url, max)
	}
	digest := sha256Hex(data)
	if src.digest != "" && digest != src.digest {
		return nil, "", fmt.Errorf("module %s has sha256 %s, want %s (from the URL's fragment)", src.url, digest, src.digest)
	}
	if err := writeFileAtomic(file, data); err != nil {
		return nil, "", fmt.Errorf("module cache: %w", err)
	}
	r.log.Info("downloaded module", "url", src.url, "sha256", digest, "bytes", len(data), "took", time.Since(t0).Round(time.Millisecond))
	return data, digest, nil
}

// cachePath is where the module at url is cached.
func (r *Runtime) cachePath(url string) string {
	return filepath.Join(r.cacheDir, sha256Hex([]byte(url))+".wasm")
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// writeFileAtomic writes data to file through a temporary file and a
// rename, so that a crash never leaves a partial module in the cache.
func writeFileAtomic(file string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(file), ".download-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
