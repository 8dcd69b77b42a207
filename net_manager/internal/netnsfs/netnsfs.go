// Package netnsfs creates and removes named network namespaces, bind mounts
// under /run/netns that `ip netns` sees as its own.
//
// Every creation first makes /run/netns a shared mount point, as `ip netns
// add` does before its first bind mount. Creating namespaces without that
// step races with a concurrent first `ip netns add`: its recursive self-bind
// of /run/netns copies the namespace mounts already there, and the copies
// hidden underneath can then neither be unmounted nor removed (EBUSY).
package netnsfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// Dir is where named network namespaces live, as with `ip netns`.
const Dir = "/run/netns"

var shareDir sync.Once

// prepare does what `ip netns add` does before its first bind mount: make
// Dir a shared mount point (bind-mounting it on itself if it is none yet),
// so that namespaces created later also appear in mount namespaces copied
// from this one. Best effort, as in iproute2.
func prepare() error {
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return err
	}
	shareDir.Do(func() {
		err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if errors.Is(err, unix.EINVAL) {
			if unix.Mount(Dir, Dir, "none", unix.MS_BIND|unix.MS_REC, "") == nil {
				_ = unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
			}
		}
	})
	return nil
}

// Create makes a new network namespace and bind-mounts it on Dir/<name>,
// without moving any thread of the caller into it. It returns the path.
func Create(name string) (string, error) {
	if err := prepare(); err != nil {
		return "", err
	}
	path := filepath.Join(Dir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return "", err
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount on %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}

// IsMount reports whether path is a bound network namespace (and not, say,
// the empty file left by a crash between create and mount).
func IsMount(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// Delete unmounts and removes Dir/<name>; a missing one is not an error.
func Delete(name string) error {
	path := filepath.Join(Dir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
