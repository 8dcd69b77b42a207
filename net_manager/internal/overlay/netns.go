package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where named network namespaces live, as with `ip netns`.
const netnsDir = "/run/netns"

// currentNetns opens the network namespace of the calling thread.
func currentNetns() (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return netns.Get()
}

// inNetns runs fn on a fresh OS thread that has joined ns. The thread is
// never handed back to the Go scheduler: the goroutine exits with it locked,
// so the runtime terminates it and no other goroutine inherits the namespace.
func inNetns(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked on purpose: see above
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("join network namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

var shareNetnsDir sync.Once

// makeNetnsDirShared does what `ip netns add` does before its first bind
// mount: make /run/netns a shared mount point, so that namespaces created
// later also appear in mount namespaces copied from this one. Best effort.
func makeNetnsDirShared() {
	shareNetnsDir.Do(func() {
		err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if errors.Is(err, unix.EINVAL) {
			if unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, "") == nil {
				_ = unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
			}
		}
	})
}

// createNamedNetns creates a new network namespace and bind-mounts it on
// /run/netns/<name>, without moving any thread of the caller into it.
func createNamedNetns(name string) (string, error) {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return "", err
	}
	makeNetnsDirShared()
	path := filepath.Join(netnsDir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return "", err
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // the thread dies with the goroutine
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

// isNetnsMount reports whether path is a bound network namespace (and not,
// say, the empty file left by a crash between create and mount).
func isNetnsMount(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// deleteNamedNetns unmounts and removes /run/netns/<name>; a missing one is
// not an error.
func deleteNamedNetns(name string) error {
	path := filepath.Join(netnsDir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
