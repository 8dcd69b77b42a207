package nft

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// FlushConntrack deletes every conntrack entry (any protocol) whose reply
// source is one of addrs, in the Tables' namespace. Established connections
// keep the backend chosen when they started, even after Apply removed it;
// call FlushConntrack when an instance is gone for good (undeployed, crashed)
// so that the next packet of such a connection is translated afresh and the
// client gets a reset from a live backend instead of retransmitting into the
// void. Apply does this by itself only for UDP.
func (t *Tables) FlushConntrack(addrs ...netip.Addr) (int, error) {
	var fs []netlink.CustomConntrackFilter
	for _, a := range addrs {
		a = a.Unmap()
		if !a.Is4() {
			return 0, fmt.Errorf("nft: flush conntrack: %v is not an IPv4 address", a)
		}
		f := &netlink.ConntrackFilter{}
		if err := f.AddIP(netlink.ConntrackReplySrcIP, a.AsSlice()); err != nil {
			return 0, err
		}
		fs = append(fs, f)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.deleteConntrack(fs)
}

func (t *Tables) deleteConntrack(fs []netlink.CustomConntrackFilter) (int, error) {
	if len(fs) == 0 {
		return 0, nil
	}
	h, err := netlink.NewHandleAt(t.ns)
	if err != nil {
		return 0, fmt.Errorf("nft: conntrack: %w", err)
	}
	defer h.Close()
	n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, fs...)
	if err != nil {
		return int(n), fmt.Errorf("nft: conntrack: %w", err)
	}
	return int(n), nil
}

// cleanupConntrack deletes the UDP conntrack entries that still lead to a
// backend removed from a service, or to the old target of a UDP port mapping
// that was removed or changed. UDP flows have no end: a client that keeps
// sending on one socket would otherwise stay with the old backend for as long
// as it sends. TCP is left alone so that a backend being scaled down can
// finish its connections (FlushConntrack for the rest).
func (t *Tables) cleanupConntrack(prevSvcs map[netip.Addr][]netip.Addr, prevPorts []PortMap, svcs []Service, ports []PortMap) {
	cur := make(map[netip.Addr][]netip.Addr, len(svcs))
	for _, s := range svcs {
		cur[s.IP] = s.Backends
	}
	var fs []netlink.CustomConntrackFilter
	for ip, old := range prevSvcs {
		now := cur[ip]
		for _, b := range old {
			if contains(now, b) {
				continue
			}
			f := &netlink.ConntrackFilter{}
			if err := f.AddProtocol(unix.IPPROTO_UDP); err != nil {
				continue
			}
			_ = f.AddIP(netlink.ConntrackOrigDstIP, ip.AsSlice())
			_ = f.AddIP(netlink.ConntrackReplySrcIP, b.AsSlice())
			fs = append(fs, f)
		}
	}
	for _, p := range prevPorts {
		if p.Proto != "udp" || containsPort(ports, p) {
			continue
		}
		f := &netlink.ConntrackFilter{}
		if err := f.AddProtocol(unix.IPPROTO_UDP); err != nil {
			continue
		}
		_ = f.AddPort(netlink.ConntrackOrigDstPort, uint16(p.HostPort))
		_ = f.AddIP(netlink.ConntrackReplySrcIP, p.IP.AsSlice())
		fs = append(fs, f)
	}
	if n, err := t.deleteConntrack(fs); err != nil {
		t.cfg.Logger.Warn("nft: deleting stale UDP conntrack entries", "err", err)
	} else if n > 0 {
		t.cfg.Logger.Debug("nft: deleted stale UDP conntrack entries", "count", n)
	}
}

func contains(s []netip.Addr, a netip.Addr) bool {
	for _, x := range s {
		if x == a {
			return true
		}
	}
	return false
}

func containsPort(s []PortMap, p PortMap) bool {
	for _, x := range s {
		if x == p {
			return true
		}
	}
	return false
}
