package unikernel

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/internal/diskgc"
)

// TestCacheGC: the collector removes cached images no instance holds, the
// least recently used first, and never one an instance runs or a Start
// touched just now.
func TestCacheGC(t *testing.T) {
	r, err := New(context.Background(), Config{NodeName: "n1", StateDir: t.TempDir()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	long := time.Now().Add(-2 * time.Hour)
	plant := func(url string, bytes int, used time.Time) string {
		dir := r.imageDir(url)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fileKernel), make([]byte, bytes), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, used, used); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	inUse := plant("http://h/used.tar.gz", 1000, long.Add(-time.Hour))
	oldest := plant("http://h/oldest.tar.gz", 1000, long.Add(-time.Minute))
	old := plant("http://h/old.tar.gz", 1000, long)
	recent := plant("http://h/recent.tar.gz", 1000, time.Now())
	r.mu.Lock()
	r.insts["u.0"] = &instance{key: "u.0", spec: wire.InstanceSpec{Key: "u.0", Code: "http://h/used.tar.gz"}}
	r.mu.Unlock()

	// Budget 500: every item but the one in use is a candidate; the one
	// touched just now refuses.
	c := diskgc.Collector{Budget: 500, Stores: []diskgc.Store{r.Cache()}}
	res, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 4000 || res.Freed != 2000 {
		t.Errorf("Collect: total %d, freed %d; want 4000 and 2000", res.Total, res.Freed)
	}
	for dir, want := range map[string]bool{inUse: true, oldest: false, old: false, recent: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s after Collect: %v, want kept=%v", filepath.Base(dir), err, want)
		}
	}
}
