package containerd_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/containerd/containerd/errdefs"

	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/internal/diskgc"
	ctrd "github.com/thicket-edge/thicket/node_engine/runtimes/containerd"
)

// TestImageGC: over the disk budget, an image some container uses stays,
// one unused for less than ImageGCAfter stays, and one unused for longer
// is deleted from containerd; a later Start pulls it again.
func TestImageGC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ref, err := registry.PushTestApp(ctx, fmt.Sprintf("gcapp%d", os.Getpid()), "v1")
	if err != nil {
		t.Fatal(err)
	}
	ours := func(name string) bool { return name == ref }
	collect := func(rt *ctrd.Runtime) diskgc.Result {
		t.Helper()
		c := diskgc.Collector{Budget: 1, Stores: []diskgc.Store{rt.Images()}}
		res, err := c.Collect(nsCtx(t))
		if err != nil {
			t.Fatalf("Collect: %v", err)
		}
		return res
	}
	present := func(rt *ctrd.Runtime) bool {
		_, err := rt.Client().GetImage(nsCtx(t), ref)
		if err != nil && !errdefs.IsNotFound(err) {
			t.Fatalf("GetImage: %v", err)
		}
		return err == nil
	}

	rt := newRuntime(t, func(c *ctrd.Config) { c.ImageGCAfter = time.Nanosecond })
	rt.SetImageFilter(ours)
	s := spec("gc.0", testharness.FreePort(t), "sleep", "600")
	s.Code = ref
	if err := rt.Start(nsCtx(t), s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if res := collect(rt); len(res.Removed) != 0 || res.Total <= 0 || !present(rt) {
		t.Fatalf("an image in use: Collect removed %v of %d bytes (present %v); want it kept", res.Removed, res.Total, present(rt))
	}
	if err := rt.Remove(nsCtx(t), s.Key); err != nil {
		t.Fatalf("Remove: %v", err)
	}

	// Unused now, but not for an hour: kept by a runtime that waits that long.
	idle := newRuntime(t, func(c *ctrd.Config) { c.ImageGCAfter = time.Hour })
	idle.SetImageFilter(ours)
	if res := collect(idle); len(res.Removed) != 0 || !present(rt) {
		t.Fatalf("an image unused for less than ImageGCAfter: Collect removed %v", res.Removed)
	}

	res := collect(rt)
	if len(res.Removed) != 1 || res.Removed[0].ID != ref || res.Freed <= 0 {
		t.Fatalf("an unused image: Collect removed %v (%d bytes), want %s", res.Removed, res.Freed, ref)
	}
	if present(rt) {
		t.Fatalf("image %s still in containerd after Collect", ref)
	}
	t.Logf("removed %s: %d bytes", ref, res.Freed)
	if err := rt.Start(nsCtx(t), s); err != nil {
		t.Fatalf("Start after the image was collected (pulls it again): %v", err)
	}
}
