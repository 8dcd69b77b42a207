package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/thicket-edge/thicket/node_engine/runtimes"
	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
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
	fetch.Source
	name string // file name of the URL path: argv[0]
}

// parseCode parses an instance's code: an http(s) URL, optionally with a
// fragment sha256=<64 hex digits>.
func parseCode(code string) (moduleSource, error) {
	if code == "" {
		return moduleSource{}, errors.New("no module URL (code)")
	}
	src, err := fetch.Parse("module", code)
	if err != nil {
		return moduleSource{}, err
	}
	name := path.Base(src.Path)
	if name == "." || name == "/" {
		name = src.Host
	}
	return moduleSource{Source: src, name: name}, nil
}

// acquire returns the compiled module of code, holding a reference for the
// caller (release it with release). The module is downloaded unless cached
// on disk and compiled unless compiled in memory already.
func (r *Runtime) acquire(ctx context.Context, code string) (*compiledModule, moduleSource, error) {
	src, err := parseCode(code)
	if err != nil {
		return nil, src, err
	}
	if err := r.cfg.Policy.CheckURL("module", src.Source); err != nil {
		return nil, src, err
	}
	// Fast path: the content last cached for this URL is compiled.
	r.mu.Lock()
	if d, ok := r.urlDigest[src.URL]; ok && (src.Digest == "" || src.Digest == d) {
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
	r.urlDigest[src.URL] = digest
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
		return nil, fmt.Errorf("compile module %s: %w", src.URL, err)
	}
	took := time.Since(t0)
	if cm.ExportedFunctions()["_start"] == nil {
		_ = cm.Close(context.Background())
		return nil, fmt.Errorf("module %s exports no _start: not a WASI command", src.URL)
	}
	r.log.Info("compiled module", "url", src.URL, "sha256", digest, "bytes", len(data), "took", took.Round(time.Millisecond))
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
	unlock := r.fetches.Lock(src.URL)
	defer unlock()
	file := r.cachePath(src.URL)
	data, err := os.ReadFile(file)
	switch {
	case err == nil && int64(len(data)) <= r.cfg.MaxModuleBytes:
		digest := fetch.SHA256(data)
		if src.Digest == "" || digest == src.Digest {
			return data, digest, nil
		}
		// The cached copy is not the pinned version: download it again.
		r.log.Info("cached module does not match its digest; downloading it again", "url", src.URL, "cached", digest, "want", src.Digest)
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
	r.mu.Lock()
	r.downloads++
	r.mu.Unlock()
	var buf bytes.Buffer
	f := fetch.Fetcher{Client: r.cfg.HTTPClient, MaxBytes: r.cfg.MaxModuleBytes, What: "module", Policy: r.cfg.Policy}
	_, digest, err := f.Get(ctx, src.Source, &buf)
	if err != nil {
		return nil, "", err
	}
	data := buf.Bytes()
	// A crash never leaves a partial module in the cache.
	if err := runtimes.WriteFileAtomic(file, data); err != nil {
		return nil, "", fmt.Errorf("module cache: %w", err)
	}
	r.log.Info("downloaded module", "url", src.URL, "sha256", digest, "bytes", len(data), "took", time.Since(t0).Round(time.Millisecond))
	return data, digest, nil
}

// cachePath is where the module at url is cached.
func (r *Runtime) cachePath(url string) string {
	return filepath.Join(r.cacheDir, fetch.SHA256([]byte(url))+".wasm")
}
