package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/contract/netapi"
	"github.com/thicket-edge/thicket/node_engine/runtimes/containerd"
	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
)

// sandboxFlags are the flags that confine workloads: the containers'
// sandbox and where code may come from.
type sandboxFlags struct {
	PidsLimit         int64         `name:"pids-limit" default:"1024" env:"THICKET_PIDS_LIMIT" help:"Most processes and threads one container may have; a service's SLA (security.pids_limit) may lower it, not raise it."`
	PullTimeout       time.Duration `name:"image-pull-timeout" default:"10m" env:"THICKET_IMAGE_PULL_TIMEOUT" help:"Longest a container image pull may take."`
	CodeAllowURL      []string      `name:"code-allow-url" env:"THICKET_CODE_ALLOW_URLS" help:"URL prefix wasm and unikernel code may come from (repeatable); when given, no other URL is fetched."`
	CodeAllowNet      []string      `name:"code-allow-net" env:"THICKET_CODE_ALLOW_NETS" help:"Non-public network (CIDR or address) wasm and unikernel code may come from, e.g. 10.0.0.0/8 (repeatable); by default loopback, private, link-local and other special addresses are refused."`
	CodeAllowUnpinned bool          `name:"code-allow-unpinned" env:"THICKET_CODE_ALLOW_UNPINNED" help:"Fetch wasm and unikernel code whose URL has no #sha256= pin (development only)."`
	CodeDownloads     int           `name:"code-downloads" default:"2" env:"THICKET_CODE_DOWNLOADS" help:"Most wasm and unikernel code downloads at once."`
	UsernsRemap       string        `name:"userns-remap" placeholder:"HOSTID:SIZE" env:"THICKET_USERNS_REMAP" help:"Run new containers in user namespaces: container user and group IDs 0 to SIZE-1 are host IDs HOSTID to HOSTID+SIZE-1 (e.g. 1000000:65536; the range must be unused on this host), so root in a container is nobody on the host. Privileged containers are refused. Empty: off."`
	// BenchNoSandbox is for thicket-bench only (hidden): containers
	// without the sandbox, to measure what it costs.
	BenchNoSandbox bool `name:"bench-no-sandbox" hidden:"" help:"Benchmark only: start containers with containerd's bare defaults (no seccomp, no pids limit, all default capabilities)."`
	// WasmSandboxExec is for an emulated node (hidden): the command that
	// runs this binary as a wasm sandbox, e.g. "qemu-aarch64-static
	// /opt/thicket-node-linux-arm64" where no binfmt handler runs a foreign
	// binary by itself.
	WasmSandboxExec string `name:"wasm-sandbox-exec" hidden:"" env:"THICKET_WASM_SANDBOX_EXEC" help:"Command (space-separated) that runs this thicket-node binary as a wasm sandbox; default: this executable."`
}

// usernsRemap parses --userns-remap.
func (f sandboxFlags) usernsRemap() (containerd.IDRange, error) {
	if f.UsernsRemap == "" {
		return containerd.IDRange{}, nil
	}
	h, n, ok := strings.Cut(f.UsernsRemap, ":")
	host, herr := strconv.ParseUint(h, 10, 32)
	size, serr := strconv.ParseUint(n, 10, 32)
	switch {
	case !ok || herr != nil || serr != nil:
		return containerd.IDRange{}, fmt.Errorf("--userns-remap %q: want HOSTID:SIZE, e.g. 1000000:65536", f.UsernsRemap)
	case host == 0:
		return containerd.IDRange{}, fmt.Errorf("--userns-remap %q: host ID 0 is the host's root; choose an unused range, e.g. 1000000:65536", f.UsernsRemap)
	case size < 1 || host+size > 1<<32-1:
		return containerd.IDRange{}, fmt.Errorf("--userns-remap %q: want a size of at least 1 that stays below 2^32-1 (65536 covers every ID images use)", f.UsernsRemap)
	}
	return containerd.IDRange{HostID: uint32(host), Size: uint32(size)}, nil
}

// codePolicy checks the flags and returns where the wasm and unikernel
// runtimes may fetch code from.
func (f sandboxFlags) codePolicy() (*fetch.Policy, error) {
	p := &fetch.Policy{URLPrefixes: f.CodeAllowURL, AllowUnpinned: f.CodeAllowUnpinned, MaxConcurrent: f.CodeDownloads}
	for _, s := range f.CodeAllowNet {
		n, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("--code-allow-net %q: want a CIDR such as 10.0.0.0/8 or an address", s)
			}
			n = netip.PrefixFrom(a, a.BitLen())
		}
		p.Networks = append(p.Networks, n.Masked())
	}
	for _, u := range f.CodeAllowURL {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("--code-allow-url %q: want an http:// or https:// URL prefix", u)
		}
	}
	if f.CodeDownloads < 1 {
		return nil, fmt.Errorf("--code-downloads %d: want at least 1", f.CodeDownloads)
	}
	if f.PidsLimit < 1 {
		return nil, fmt.Errorf("--pids-limit %d: want at least 1", f.PidsLimit)
	}
	return p, nil
}

// isolateContainers reports whether containers get a network namespace of
// their own with loopback only: when the node has no overlay without
// having been told so. Only --net-socket none (or a --netns) puts them
// in the node's network; a missing thicket-net does not.
func (c cli) isolateContainers(log *slog.Logger) bool {
	if c.NetSocket != "" || c.NetNS != "" {
		return false
	}
	if _, err := os.Stat(netapi.DefaultSocket); err == nil {
		return false
	}
	log.Warn("thicket-net is not running here (no " + netapi.DefaultSocket + "): containers get no network but loopback; " +
		"start thicket-net first, or give --net-socket none to let them share this host's network")
	return true
}
