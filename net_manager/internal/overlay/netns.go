package overlay

import (
	"fmt"
	"runtime"

	"github.com/thicket-edge/thicket/net_manager/internal/netnsfs"
	"github.com/vishvananda/netns"
)

// netnsDir is where named network namespaces live, as with `ip netns`.
const netnsDir = netnsfs.Dir

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
