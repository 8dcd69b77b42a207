package wasm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/node_engine/internal/diskgc"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// Cache is the runtime's disk cache as a diskgc.Store: the downloaded
// modules ("module/<file>") and wazero's compiled code
// ("compiled/<path>"). A module is in use while an instance this runtime
// holds (running or exited) runs it. LastUsed is the file's access time
// (a Start touches the module).
func (r *Runtime) Cache() diskgc.Store { return cacheStore{r} }

type cacheStore struct{ r *Runtime }

func (c cacheStore) Name() string { return Virtualization }

func (c cacheStore) Items(ctx context.Context) ([]diskgc.Item, error) {
	r := c.r
	used := map[string]bool{}
	r.mu.Lock()
	for _, inst := range r.insts {
		used[r.cachePath(inst.src.URL)] = true
	}
	r.mu.Unlock()
	var items []diskgc.Item
	for _, dir := range []struct{ prefix, path string }{{"module/", r.cacheDir}, {"compiled/", r.compDir}} {
		err := filepath.WalkDir(dir.path, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return nil // removed meanwhile
			}
			rel, _ := filepath.Rel(dir.path, p)
			items = append(items, diskgc.Item{ID: dir.prefix + rel, Bytes: fi.Size(), LastUsed: runtimes.LastUsed(fi), InUse: used[p]})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return items, nil
}

func (c cacheStore) Remove(ctx context.Context, id string) error {
	r := c.r
	kind, rel, _ := strings.Cut(id, "/")
	if rel == "" || strings.Contains(rel, "..") {
		return fmt.Errorf("bad item %q", id)
	}
	switch kind {
	case "module":
		file := filepath.Join(r.cacheDir, rel)
		unlock := r.fetches.Lock(file)
		defer unlock()
		r.mu.Lock()
		for _, inst := range r.insts {
			if r.cachePath(inst.src.URL) == file {
				r.mu.Unlock()
				return fmt.Errorf("module %s: %w", rel, diskgc.ErrInUse)
			}
		}
		r.mu.Unlock()
		return removeUnlessRecent(file)
	case "compiled":
		if err := removeUnlessRecent(filepath.Join(r.compDir, rel)); err != nil {
			return err
		}
		// Compile again (into the cache) before the next sandbox loads a
		// module, rather than in the sandbox under its CPU limit.
		r.mu.Lock()
		clear(r.compiled)
		r.mu.Unlock()
		return nil
	}
	return fmt.Errorf("bad item %q", id)
}

// removeUnlessRecent removes file unless it was used within recentUse.
func removeUnlessRecent(file string) error {
	fi, err := os.Stat(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if time.Since(runtimes.LastUsed(fi)) < runtimes.RecentUse {
		return fmt.Errorf("%s: %w", filepath.Base(file), diskgc.ErrInUse)
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
