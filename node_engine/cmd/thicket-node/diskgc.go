package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/thicket-edge/thicket/node_engine/internal/diskgc"
)

// diskFlags bound what the runtimes keep on disk.
type diskFlags struct {
	CacheMaxBytes int64         `name:"cache-max-bytes" default:"2147483648" env:"THICKET_CACHE_MAX_BYTES" help:"Disk budget of the node's caches: downloaded wasm modules and their compiled code, unikernel images and container images. Over it, the least recently used items no instance uses are removed (checked every minute)."`
	ImageGCAfter  time.Duration `name:"image-gc-after" default:"1h" env:"THICKET_IMAGE_GC_AFTER" help:"A container image is removed (when the caches are over --cache-max-bytes) only once no container has used it for this long."`
}

func (f diskFlags) check() error {
	if f.CacheMaxBytes < 1<<20 {
		return fmt.Errorf("--cache-max-bytes %d: want at least 1 MiB", f.CacheMaxBytes)
	}
	if f.ImageGCAfter <= 0 {
		return fmt.Errorf("--image-gc-after %v: want a positive duration", f.ImageGCAfter)
	}
	return nil
}

// collectDisk keeps the stores under the budget until ctx ends.
func (f diskFlags) collectDisk(ctx context.Context, log *slog.Logger, stores ...diskgc.Store) {
	c := &diskgc.Collector{Budget: f.CacheMaxBytes, Stores: stores, Log: log.With("component", "diskgc")}
	go c.Run(ctx, diskgc.DefaultEvery)
}
