package unikernel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/node_engine/internal/diskgc"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// Cache is the runtime's image cache as a diskgc.Store: one item per
// cached image (its directory). An image is in use while an instance this
// runtime holds (running or exited) runs it. LastUsed is the directory's
// modification time, which every Start of the image touches.
func (r *Runtime) Cache() diskgc.Store { return cacheStore{r} }

type cacheStore struct{ r *Runtime }

func (c cacheStore) Name() string { return Virtualization }

// used is the set of image directories the runtime's instances run.
func (c cacheStore) used() map[string]bool {
	r := c.r
	used := map[string]bool{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, inst := range r.insts {
		srcs, err := parseCode(inst.spec.Code)
		if err != nil {
			continue
		}
		if src, err := selectSource(srcs, inst.spec.Arch, runtime.GOARCH); err == nil {
			used[r.imageDir(src.URL)] = true
		}
	}
	return used
}

func (c cacheStore) Items(ctx context.Context) ([]diskgc.Item, error) {
	r := c.r
	used := c.used()
	es, err := os.ReadDir(r.cacheDir)
	if err != nil {
		return nil, err
	}
	var items []diskgc.Item
	for _, e := range es {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue // downloads and unpackings in progress
		}
		dir := filepath.Join(r.cacheDir, e.Name())
		fi, err := os.Stat(dir)
		if err != nil {
			continue
		}
		items = append(items, diskgc.Item{ID: e.Name(), Bytes: duBytes(dir), LastUsed: fi.ModTime(), InUse: used[dir]})
	}
	return items, nil
}

func (c cacheStore) Remove(ctx context.Context, id string) error {
	r := c.r
	if id == "" || strings.ContainsAny(id, "/.") {
		return fmt.Errorf("bad item %q", id)
	}
	dir := filepath.Join(r.cacheDir, id)
	unlock := r.fetches.Lock(dir)
	defer unlock()
	if c.used()[dir] {
		return fmt.Errorf("image %s: %w", id, diskgc.ErrInUse)
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if time.Since(fi.ModTime()) < runtimes.RecentUse {
		return fmt.Errorf("image %s: %w", id, diskgc.ErrInUse)
	}
	return os.RemoveAll(dir)
}

// duBytes is the size of the files under dir.
func duBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
