package testharness

import (
	"fmt"
	"os/exec"
	"strings"
)

// NetworkConfig names a network's devices and namespaces. Suites that may
// run at the same time each use their own bridge and prefix.
type NetworkConfig struct {
	// Bridge is the bridge device, e.g. "thke2e0".
	Bridge string
	// Prefix is the /24 without its last octet, e.g. "10.213.0": the
	// bridge has <Prefix>.1, host octet <Prefix>.<octet>.
	Prefix string
	// HostPrefix and VethPrefix name host octet's namespace
	// <HostPrefix>-<octet> and its veth on the bridge <VethPrefix><octet>
	// (at most 15 characters). They keep a run's names apart from another
	// run's leftovers.
	HostPrefix, VethPrefix string
}

// The suites' and the benchmark's bridges and /24s, in one place so that
// they stay apart: each may run while another's leftovers are still there.
// (deploy's compose test also gives its dockerd 10.215.0.0/16.) Copy one
// and set HostPrefix and VethPrefix for the run.
var (
	E2ENetwork     = NetworkConfig{Bridge: "thke2e0", Prefix: "10.213.0"}
	ComposeNetwork = NetworkConfig{Bridge: "thkdc0", Prefix: "10.214.0"}
	BenchNetwork   = NetworkConfig{Bridge: "thkbbr0", Prefix: "10.216.0"}
	// testNetwork is this package's own tests'.
	testNetwork = NetworkConfig{Bridge: "thkht0", Prefix: "10.217.0"}
)

// Network is a bridge on this machine with network namespaces ("hosts")
// joined to it by veth pairs, each with its own address and a default
// route through the bridge. Close removes them. Not safe for concurrent
// use.
type Network struct {
	NetworkConfig
	// Addr is the bridge's (this machine's) address on the network.
	Addr  string
	hosts []string
	veths []string
}

// Host is a network namespace on the bridge.
type Host struct {
	// Netns is the namespace's name (under /run/netns), Path its file.
	Netns, Path string
	// Addr is its address on the bridge; its interface is eth0.
	Addr string
}

// NewNetwork creates the bridge, removing a leftover of an interrupted run
// first.
func NewNetwork(c NetworkConfig) (*Network, error) {
	exec.Command("ip", "link", "del", c.Bridge).Run()
	n := &Network{NetworkConfig: c, Addr: c.Prefix + ".1"}
	for _, args := range [][]string{
		{"link", "add", c.Bridge, "type", "bridge"},
		{"addr", "add", n.Addr + "/24", "dev", c.Bridge},
		{"link", "set", c.Bridge, "up"},
	} {
		if err := ip(args...); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// AddHost creates the host with address <Prefix>.<octet>.
func (n *Network) AddHost(octet int) (Host, error) {
	h := Host{Netns: fmt.Sprintf("%s-%d", n.HostPrefix, octet), Addr: fmt.Sprintf("%s.%d", n.Prefix, octet)}
	h.Path = "/run/netns/" + h.Netns
	veth := fmt.Sprintf("%s%d", n.VethPrefix, octet)
	// A namespace deleted while a process still ran in it lives on with
	// its end of the veth pair, which keeps this name taken: deleting one
	// end deletes both.
	exec.Command("ip", "link", "del", veth).Run()
	// Likewise a host of this name that an earlier user of the network
	// left (the names carry the run's prefix: it is this run's own).
	exec.Command("ip", "netns", "del", h.Netns).Run()
	if err := ip("netns", "add", h.Netns); err != nil {
		return h, err
	}
	n.hosts = append(n.hosts, h.Netns)
	n.veths = append(n.veths, veth)
	for _, args := range [][]string{
		{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.Netns},
		{"link", "set", veth, "master", n.Bridge, "up"},
		{"-n", h.Netns, "addr", "add", h.Addr + "/24", "dev", "eth0"},
		{"-n", h.Netns, "link", "set", "eth0", "up"},
		{"-n", h.Netns, "link", "set", "lo", "up"},
		{"-n", h.Netns, "route", "add", "default", "via", n.Addr},
	} {
		if err := ip(args...); err != nil {
			return h, err
		}
	}
	return h, nil
}

// Close deletes the hosts, their veth pairs (also of a namespace that a
// process keeps alive after its name is deleted) and the bridge.
func (n *Network) Close() {
	for _, h := range n.hosts {
		exec.Command("ip", "netns", "del", h).Run()
	}
	for _, v := range n.veths {
		exec.Command("ip", "link", "del", v).Run()
	}
	n.hosts, n.veths = nil, nil
	exec.Command("ip", "link", "del", n.Bridge).Run()
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
