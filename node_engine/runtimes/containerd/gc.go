package containerd

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"

	"github.com/thicket-edge/thicket/node_engine/internal/diskgc"
)

// LabelLastUsed, on an image, is when a container last used it (RFC 3339),
// as the collector saw: an image unused since longer than
// Config.ImageGCAfter may be removed when the node is over its disk budget.
const LabelLastUsed = "thicket.dev/last-used"

// recentUse keeps an image a Start asked for this recently (the pull
// before the container exists).
var recentUse = time.Minute

// Images is the runtime's containerd namespace as a diskgc.Store: one item
// per image, its size the content it holds (compressed layers, config,
// manifests), in use while any container of the namespace (of any node
// sharing it) was made from it. LastUsed is LabelLastUsed, which each
// collection stamps on the images in use, or when the image was last
// updated (pulled); MinIdle is Config.ImageGCAfter. Removing an image
// deletes it synchronously; containerd collects its content and snapshots.
func (r *Runtime) Images() diskgc.Store { return imageStore{r} }

type imageStore struct{ r *Runtime }

func (s imageStore) Name() string { return Virtualization }

// inUse is the set of image names containers of the namespace use.
func (s imageStore) inUse(ctx context.Context) (map[string]bool, error) {
	cs, err := s.r.client.ContainerService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	used := map[string]bool{}
	for _, c := range cs {
		used[c.Image] = true
	}
	return used, nil
}

func (s imageStore) Items(ctx context.Context) ([]diskgc.Item, error) {
	r := s.r
	used, err := s.inUse(ctx)
	if err != nil {
		return nil, err
	}
	imgs, err := r.client.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	now := time.Now().UTC()
	var items []diskgc.Item
	for _, img := range imgs {
		if r.imageFilter != nil && !r.imageFilter(img.Name) {
			continue
		}
		size, err := containerd.NewImage(r.client, img).Size(ctx)
		if err != nil {
			r.log.Debug("image size", "image", img.Name, "err", err)
		}
		last := img.UpdatedAt
		if t, err := time.Parse(time.RFC3339, img.Labels[LabelLastUsed]); err == nil && t.After(last) {
			last = t
		}
		if used[img.Name] {
			if now.Sub(last) > time.Minute {
				if img.Labels == nil {
					img.Labels = map[string]string{}
				}
				img.Labels[LabelLastUsed] = now.Format(time.RFC3339)
				if _, err := r.client.ImageService().Update(ctx, img, "labels."+LabelLastUsed); err != nil {
					r.log.Warn("mark an image used", "image", img.Name, "err", err)
				}
			}
			last = now
		}
		items = append(items, diskgc.Item{ID: img.Name, Bytes: size, LastUsed: last, InUse: used[img.Name], MinIdle: r.cfg.ImageGCAfter})
	}
	return items, nil
}

func (s imageStore) Remove(ctx context.Context, name string) error {
	r := s.r
	unlock := r.pulls.Lock(name)
	defer unlock()
	r.mu.Lock()
	asked, recent := r.used[name]
	r.mu.Unlock()
	if recent && time.Since(asked) < recentUse {
		return fmt.Errorf("image %s: %w", name, diskgc.ErrInUse)
	}
	used, err := s.inUse(ctx)
	if err != nil {
		return err
	}
	if used[name] {
		return fmt.Errorf("image %s: %w", name, diskgc.ErrInUse)
	}
	r.markReady(name, nil)
	if err := r.client.ImageService().Delete(ctx, name, images.SynchronousDelete()); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete image %s: %w", name, err)
	}
	return nil
}
