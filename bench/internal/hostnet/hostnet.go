// Package hostnet makes "hosts" on this machine: network namespaces joined
// by veth pairs to one bridge, each with its own address, as the
// end-to-end suite does.
package hostnet

import (
	"fmt"
	"os/exec"
	"strings"
)

// Network is a bridge with address <prefix>.1/24 and hosts <prefix>.<octet>.
type Network struct {
	Bridge string
	// Addr is the bridge's (the machine's) address on the network.
	Addr   string
	prefix string
	tag    string
	hosts  []string
}

// New creates the bridge; tag keeps this run's device and namespace names
// apart from other runs' (at most 6 characters).
func New(bridge, prefix, tag string) (*Network, error) {
	exec.Command("ip", "link", "del", bridge).Run() // a leftover of an interrupted run
	n := &Network{Bridge: bridge, Addr: prefix + ".1", prefix: prefix, tag: tag}
	for _, args := range [][]string{
		{"link", "add", bridge, "type", "bridge"},
		{"addr", "add", n.Addr + "/24", "dev", bridge},
		{"link", "set", bridge, "up"},
	} {
		if err := ip(args...); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// Host is a network namespace on the bridge.
type Host struct {
	Netns string // name under /run/netns
	Path  string
	Addr  string
}

// AddHost creates namespace <tag>-<octet> with address <prefix>.<octet>.
func (n *Network) AddHost(octet int) (Host, error) {
	h := Host{Netns: fmt.Sprintf("thkb%s-%d", n.tag, octet), Addr: fmt.Sprintf("%s.%d", n.prefix, octet)}
	h.Path = "/run/netns/" + h.Netns
	veth := fmt.Sprintf("thkb%s%d", n.tag, octet)
	if err := ip("netns", "add", h.Netns); err != nil {
		return h, err
	}
	n.hosts = append(n.hosts, h.Netns)
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

// Close deletes the hosts and the bridge.
func (n *Network) Close() {
	for _, h := range n.hosts {
		exec.Command("ip", "netns", "del", h).Run()
	}
	n.hosts = nil
	exec.Command("ip", "link", "del", n.Bridge).Run()
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
