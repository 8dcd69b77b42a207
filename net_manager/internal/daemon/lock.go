package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thicket-edge/thicket/net_manager/internal/nft"
	"github.com/thicket-edge/thicket/net_manager/internal/overlay"
)

// lockAddr is the abstract unix socket (Go's "@": a name, no file) that a
// running thicket-net holds in its network namespace. An abstract socket
// belongs to the network namespace it was created in and goes away with the
// process holding it, so the lock is per namespace, like the devices it
// guards, and never stale.
const lockAddr = "@thicket-net"

// lockInfo is what the lock's holder tells whoever connects to it.
type lockInfo struct {
	DataDir string `json:"data_dir"`
	Socket  string `json:"socket"`
}

// netnsLock is the lock of the current network namespace.
type netnsLock struct{ ln net.Listener }

// lockNetns takes the lock of the network namespace of the calling thread:
// a second thicket-net there would fight over the bridge, the VXLAN device
// and the nftables table. While it holds the lock, it answers every
// connection with self (the error of a second one names the first).
func lockNetns(self lockInfo) (*netnsLock, error) {
	ln, err := net.Listen("unix", lockAddr)
	if errors.Is(err, unix.EADDRINUSE) {
		return nil, errors.New(lockHeldMessage())
	}
	if err != nil {
		return nil, fmt.Errorf("lock the network namespace (listen on %s): %w", lockAddr, err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_ = json.NewEncoder(c).Encode(self)
			c.Close()
		}
	}()
	return &netnsLock{ln: ln}, nil
}

// Close releases the lock.
func (l *netnsLock) Close() error { return l.ln.Close() }

// lockHeldMessage says that another thicket-net holds the lock, and which
// one, as far as it answers.
func lockHeldMessage() string {
	var who []string
	pid, info := lockHolder()
	if pid > 0 {
		who = append(who, fmt.Sprintf("pid %d", pid))
	}
	if info.DataDir != "" {
		who = append(who, "--data-dir "+info.DataDir)
	}
	if info.Socket != "" {
		who = append(who, "--socket "+info.Socket)
	}
	running := "another thicket-net is running in this network namespace"
	if len(who) > 0 {
		running += " (" + strings.Join(who, ", ") + ")"
	}
	return fmt.Sprintf("%s and owns %s, %s and the nftables table ip %s: stop it, or run this one in another network namespace",
		running, overlay.DefaultBridge, overlay.DefaultVXLAN, nft.DefaultTable)
}

// lockHolder asks the holder of the lock who it is, as far as it answers;
// the pid is the kernel's (SO_PEERCRED, in this process's pid namespace).
func lockHolder() (pid int, info lockInfo) {
	c, err := net.DialTimeout("unix", lockAddr, time.Second)
	if err != nil {
		return 0, info
	}
	defer c.Close()
	if raw, err := c.(*net.UnixConn).SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
				pid = int(cred.Pid)
			}
		})
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_ = json.NewDecoder(c).Decode(&info)
	return pid, info
}
