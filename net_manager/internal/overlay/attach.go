package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/thicket-edge/thicket/net_manager/internal/netnsfs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// instIf is the instance end of the veth pair, inside the instance namespace.
const instIf = "eth0"

// NetnsName is the name under /run/netns of the namespace of the instance
// with this key: NetnsPrefix followed by the key with every byte other than
// ASCII letters, digits and '.' written as '_' and two hex digits
// ("web-1" → "thk-web_2d1"). The key is recovered from the name, so no other
// state is kept.
func (o *Overlay) NetnsName(key string) (string, error) {
	if err := validKey(key); err != nil {
		return "", err
	}
	name := o.cfg.NetnsPrefix + encodeKey(key)
	if len(name) > maxNetnsName {
		return "", fmt.Errorf("instance key %.20q...: namespace name longer than %d bytes", key, maxNetnsName)
	}
	return name, nil
}

// Attach gives the instance key a network namespace /run/netns/<NetnsName>
// (created if missing) holding eth0 with ip/<subnet bits>, lo up and a
// default route via the bridge address. eth0 is one end of a veth pair whose
// other end, named hostVethName(key) ("thk" + 8 hex digits) with the key as
// its alias, is a port of the bridge. Attach is idempotent: when the
// attachment exists with the same IP nothing is re-created (only missing
// pieces such as a route are restored). The same key with another IP is an
// error: Detach first.
func (o *Overlay) Attach(key string, ip netip.Addr) (Attachment, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.h == nil {
		return Attachment{}, errors.New("overlay: closed")
	}
	name, err := o.NetnsName(key)
	if err != nil {
		return Attachment{}, fmt.Errorf("overlay: attach: %w", err)
	}
	if err := o.checkInstanceIP(ip); err != nil {
		return Attachment{}, fmt.Errorf("overlay: attach %q: %w", key, err)
	}
	att := Attachment{Key: key, IP: ip, Netns: filepath.Join(netnsDir, name)}
	if err := o.attach(key, ip, name); err != nil {
		return Attachment{}, fmt.Errorf("overlay: attach %q (%v): %w", key, ip, err)
	}
	return att, nil
}

func (o *Overlay) checkInstanceIP(ip netip.Addr) error {
	s := o.cfg.Subnet
	if !ip.Is4() || !s.Contains(ip) {
		return fmt.Errorf("IP %v is not in this node's subnet %v", ip, s)
	}
	last := netip.AddrFrom4(lastAddr(s))
	switch ip {
	case o.vtep, o.gw, last:
		return fmt.Errorf("IP %v is reserved in %v (network, gateway or broadcast address)", ip, s)
	}
	return nil
}

func lastAddr(p netip.Prefix) [4]byte {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func (o *Overlay) attach(key string, ip netip.Addr, name string) error {
	path := filepath.Join(netnsDir, name)
	if _, err := os.Lstat(path); err == nil && !netnsfs.IsMount(path) {
		// Left by a crash between creating the file and mounting on it.
		if err := netnsfs.Delete(name); err != nil {
			return err
		}
	}
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		if _, err := netnsfs.Create(name); err != nil {
			return fmt.Errorf("create network namespace %s: %w", name, err)
		}
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer ns.Close()
	ih, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", name, err)
	}
	defer ih.Close()

	br, err := o.h.LinkByName(o.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", o.cfg.Bridge, err)
	}
	want := netip.PrefixFrom(ip, o.cfg.Subnet.Bits())
	hostName := hostVethName(key)

	host, err := o.h.LinkByName(hostName)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("host veth %s: %w", hostName, err)
	}
	if err == nil && host.Attrs().Alias != key && host.Attrs().Alias != "" {
		return fmt.Errorf("host veth %s belongs to instance %q (hash collision or foreign device)", hostName, host.Attrs().Alias)
	}
	eth, err := ih.LinkByName(instIf)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("%s in %s: %w", instIf, name, err)
	}
	if eth != nil {
		// Existing attachment: it must be ours and carry the same IP.
		if host == nil || eth.Type() != "veth" || !vethPeers(host, eth) {
			return fmt.Errorf("%s in %s is not the peer of %s: namespace in use by something else", instIf, name, hostName)
		}
		cur, err := instanceAddr(ih, eth, o.cfg.Subnet)
		if err != nil {
			return err
		}
		if cur.IsValid() && cur != want {
			return fmt.Errorf("already attached with %v; Detach first to change the address", cur)
		}
	} else if host != nil {
		// A host veth without its peer in the namespace: broken, re-create.
		if err := o.h.LinkDel(host); err != nil {
			return fmt.Errorf("delete stale %s: %w", hostName, err)
		}
		host = nil
	}

	if host == nil {
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: hostName, Alias: key, MTU: o.cfg.MTU, MasterIndex: br.Attrs().Index},
			PeerName:      instIf,
			PeerNamespace: netlink.NsFd(int(ns)),
			PeerMTU:       uint32(o.cfg.MTU),
			// The instance's MAC follows from its IP (as Docker does), so a
			// reused address keeps its MAC and the node's neighbour entry
			// for it stays right; a fresh MAC would send the first seconds
			// of traffic to the previous holder's.
			PeerHardwareAddr: macFor(ip),
		}
		if err := o.h.LinkAdd(veth); err != nil {
			return fmt.Errorf("create veth %s/%s: %w", hostName, instIf, err)
		}
		if host, err = o.h.LinkByName(hostName); err != nil {
			return fmt.Errorf("host veth %s: %w", hostName, err)
		}
		if eth, err = ih.LinkByName(instIf); err != nil {
			return fmt.Errorf("%s in %s: %w", instIf, name, err)
		}
	}

	// Host end: alias = key, on the bridge, up.
	if host.Attrs().Alias != key {
		if err := o.h.LinkSetAlias(host, key); err != nil {
			return fmt.Errorf("alias of %s: %w", hostName, err)
		}
	}
	if host.Attrs().MasterIndex != br.Attrs().Index {
		if err := o.h.LinkSetMasterByIndex(host, br.Attrs().Index); err != nil {
			return fmt.Errorf("put %s on %s: %w", hostName, o.cfg.Bridge, err)
		}
	}
	if host.Attrs().Flags&net.FlagUp == 0 {
		if err := o.h.LinkSetUp(host); err != nil {
			return fmt.Errorf("set %s up: %w", hostName, err)
		}
	}
	// Hairpin: an instance reaching its own service IP or published port
	// gets its packets back through the same bridge port.
	if err := o.h.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("hairpin on %s: %w", hostName, err)
	}

	// Instance end: address, up, lo up, default route.
	cur, err := instanceAddr(ih, eth, o.cfg.Subnet)
	if err != nil {
		return err
	}
	if !cur.IsValid() {
		if err := ih.AddrAdd(eth, &netlink.Addr{IPNet: prefixIPNet(want)}); err != nil {
			return fmt.Errorf("add %v to %s: %w", want, instIf, err)
		}
	}
	if eth.Attrs().Flags&net.FlagUp == 0 {
		if err := ih.LinkSetUp(eth); err != nil {
			return fmt.Errorf("set %s up: %w", instIf, err)
		}
	}
	lo, err := ih.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo in %s: %w", name, err)
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		if err := ih.LinkSetUp(lo); err != nil {
			return fmt.Errorf("set lo up: %w", err)
		}
	}
	def := &netlink.Route{
		LinkIndex: eth.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        net.IP(o.gw.AsSlice()),
	}
	if err := ih.RouteReplace(def); err != nil {
		return fmt.Errorf("default route via %v: %w", o.gw, err)
	}
	return nil
}

// vethPeers reports whether host (in the node namespace) and eth (in an
// instance namespace) are the two ends of one veth pair: each one's link
// index (IFLA_LINK) is the other's interface index.
func vethPeers(host, eth netlink.Link) bool {
	return host.Attrs().ParentIndex == eth.Attrs().Index && eth.Attrs().ParentIndex == host.Attrs().Index
}

// instanceAddr returns the IPv4 address of eth (as a prefix) inside subnet,
// or the zero Prefix if it has none; an address outside subnet is an error.
func instanceAddr(ih *netlink.Handle, eth netlink.Link, subnet netip.Prefix) (netip.Prefix, error) {
	addrs, err := ih.AddrList(eth, netlink.FAMILY_V4)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("addresses of %s: %w", instIf, err)
	}
	var found netip.Prefix
	for _, a := range addrs {
		p := ipNetPrefix(a.IPNet)
		if !subnet.Contains(p.Addr()) || p.Bits() != subnet.Bits() || found.IsValid() {
			return netip.Prefix{}, fmt.Errorf("%s has unexpected address %v (subnet %v)", instIf, p, subnet)
		}
		found = p
	}
	return found, nil
}

// Detach deletes the instance's veth pair and its named namespace. An unknown
// key is not an error. Processes still inside the namespace keep it (without
// network) until they exit.
func (o *Overlay) Detach(key string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.h == nil {
		return errors.New("overlay: closed")
	}
	if err := validKey(key); err != nil {
		return fmt.Errorf("overlay: detach: %w", err)
	}
	if err := o.detach(key); err != nil {
		return fmt.Errorf("overlay: detach %q: %w", key, err)
	}
	return nil
}

func (o *Overlay) detach(key string) error {
	hostName := hostVethName(key)
	host, err := o.h.LinkByName(hostName)
	switch {
	case isNotFound(err):
	case err != nil:
		return fmt.Errorf("host veth %s: %w", hostName, err)
	case host.Attrs().Alias == key:
		if err := o.h.LinkDel(host); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete %s: %w", hostName, err)
		}
	}
	name, err := o.NetnsName(key)
	if err != nil {
		return err
	}
	path := filepath.Join(netnsDir, name)
	if netnsfs.IsMount(path) {
		// The veth pair normally went with the host end; delete the
		// instance end too in case the host end was renamed or collided.
		if ns, err := netns.GetFromPath(path); err == nil {
			if ih, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE); err == nil {
				if eth, err := ih.LinkByName(instIf); err == nil {
					_ = ih.LinkDel(eth)
				}
				ih.Close()
			}
			ns.Close()
		}
	}
	if err := netnsfs.Delete(name); err != nil {
		return fmt.Errorf("delete network namespace %s: %w", name, err)
	}
	return nil
}

// netnsNames returns the instance namespaces of this node (names under
// /run/netns starting with NetnsPrefix followed by a valid encoded key),
// by key.
func (o *Overlay) netnsNames() (map[string]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("overlay: list %s: %w", netnsDir, err)
	}
	out := map[string]string{}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), o.cfg.NetnsPrefix)
		if !ok {
			continue
		}
		key, err := decodeKey(rest)
		if err != nil {
			continue // not one of ours
		}
		out[key] = e.Name()
	}
	return out, nil
}

// Attachments lists this node's instance namespaces with the IPs found on
// their eth0, sorted by key, so that a restarted daemon adopts them as they
// are. A namespace without a usable eth0 (an interrupted Attach) is listed
// with the zero IP. Attach(key, ip) on an adopted attachment re-creates
// nothing and repairs what is missing (bridge port, route, link state).
func (o *Overlay) Attachments() ([]Attachment, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.h == nil {
		return nil, errors.New("overlay: closed")
	}
	names, err := o.netnsNames()
	if err != nil {
		return nil, err
	}
	out := make([]Attachment, 0, len(names))
	for key, name := range names {
		a := Attachment{Key: key, Netns: filepath.Join(netnsDir, name)}
		a.IP = o.readIP(a.Netns)
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// readIP returns the IP on eth0 of the namespace at path, or the zero Addr.
func (o *Overlay) readIP(path string) netip.Addr {
	if !netnsfs.IsMount(path) {
		return netip.Addr{}
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return netip.Addr{}
	}
	defer ns.Close()
	ih, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return netip.Addr{}
	}
	defer ih.Close()
	eth, err := ih.LinkByName(instIf)
	if err != nil {
		return netip.Addr{}
	}
	p, err := instanceAddr(ih, eth, o.cfg.Subnet)
	if err != nil {
		return netip.Addr{}
	}
	return p.Addr()
}

// macFor is the locally administered MAC of an instance address:
// 02:42:<the four bytes of the IPv4 address>.
func macFor(ip netip.Addr) net.HardwareAddr {
	b := ip.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}
