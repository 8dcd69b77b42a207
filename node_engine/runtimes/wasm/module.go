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

	"github.com/thicket-edge/thicket/node_engine/runtimes"
	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
)

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

// acquire returns the file of the module at code and its digest, after
// checking the code policy: downloaded unless cached, and compiled into
// wazero's compilation cache on disk unless this runtime did so already,
// so that the sandbox process (under the instance's CPU limit) only loads
// machine code.
func (r *Runtime) acquire(ctx context.Context, src moduleSource) (file, digest string, err error) {
	if err := r.cfg.Policy.CheckURL("module", src.Source); err != nil {
		return "", "", err
	}
	data, digest, err := r.moduleData(ctx, src)
	if err != nil {
		return "", "", err
	}
	if err := r.compile(ctx, src, data, digest); err != nil {
		return "", "", err
	}
	return r.cachePath(src.URL), digest, nil
}

// compile compiles data (whose digest is digest) into the compilation
// cache on disk, once per content in this runtime, and checks that it is a
// WASI command. The compiled module is not kept in memory.
func (r *Runtime) compile(ctx context.Context, src moduleSource, data []byte, digest string) error {
	unlock := r.compiles.Lock(digest)
	defer unlock()
	r.mu.Lock()
	done := r.compiled[digest]
	r.mu.Unlock()
	if done {
		return nil
	}
	t0 := time.Now()
	wz, closeWz, err := newEngine(ctx, r.compDir)
	if err != nil {
		return err
	}
	defer closeWz()
	cm, err := wz.CompileModule(ctx, data)
	if err != nil {
		return fmt.Errorf("compile module %s: %w", src.URL, err)
	}
	defer cm.Close(context.Background())
	if cm.ExportedFunctions()["_start"] == nil {
		return fmt.Errorf("module %s exports no _start: not a WASI command", src.URL)
	}
	r.log.Info("compiled module", "url", src.URL, "sha256", digest, "bytes", len(data), "took", time.Since(t0).Round(time.Millisecond))
	r.mu.Lock()
	r.compiled[digest] = true
	r.compilations++
	r.mu.Unlock()
	return nil
}

// moduleData returns the module at src (from the cache, else downloaded
// into it) and its hex SHA-256.
func (r *Runtime) moduleData(ctx context.Context, src moduleSource) ([]byte, string, error) {
	file := r.cachePath(src.URL)
	unlock := r.fetches.Lock(file) // and the collector (gc.go)
	defer unlock()
	runtimes.TouchUsed(file)
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
