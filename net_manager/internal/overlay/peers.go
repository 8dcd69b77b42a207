package overlay

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ndaPort is NDA_PORT, the UDP destination port of a VXLAN FDB entry.
const ndaPort = 6

type peerState struct {
	Peer
	vtep netip.Addr // the peer subnet's network address
	port int        // UDP port to send to
}

// Refused is a peer SetPeers did not apply, and why.
type Refused struct {
	Index  int // in SetPeers' list
	Peer   Peer
	Reason string
}

func (r Refused) String() string {
	return fmt.Sprintf("peer %v (VTEP %v at %v): %s", r.Peer.Subnet, r.Peer.VTEPMAC, r.Peer.Underlay, r.Reason)
}

// SetPeers converges the forwarding state of the VXLAN device to exactly
// the acceptable peers: per peer a route "Subnet via <Subnet's .0> dev vxlan
// onlink", a permanent neighbour entry <Subnet's .0> → VTEPMAC and a
// permanent FDB entry VTEPMAC → Underlay:Port on the VXLAN device. Entries
// of peers no longer listed are removed. A peer with this node's own subnet
// and VTEP MAC (this node itself) is skipped. Every other peer that is
// invalid, lies outside Config.Network, overlaps this node's subnet, or
// overlaps (or shares the MAC of) a peer kept before it is refused and
// returned with the reason; the good peers are applied all the same, so a
// bad peer costs only its own route. Among overlapping peers the one routed
// by the previous SetPeers (for a new Overlay: the one the kernel routes) is
// kept, then the narrower prefix, then the one
// listed first: a newcomer cannot take a routed peer's place. The error
// reports what the kernel refused.
func (o *Overlay) SetPeers(peers []Peer) ([]Refused, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.h == nil {
		return nil, errors.New("overlay: closed")
	}
	if o.routed == nil {
		// A new Overlay (a restarted daemon): what the kernel routes.
		o.routed = o.kernelPeers()
	}
	want, refused := o.validatePeers(peers)
	err := o.setPeers(want)
	if err == nil {
		o.routed = make(map[netip.Prefix]string, len(want))
		for s, p := range want {
			o.routed[s] = string(p.VTEPMAC)
		}
	}
	return refused, err
}

// kernelPeers returns the peers the VXLAN device routes now, subnet → VTEP
// MAC (routes via a neighbour with a MAC); empty if it cannot tell.
// Caller holds mu.
func (o *Overlay) kernelPeers() map[netip.Prefix]string {
	out := map[netip.Prefix]string{}
	vx, err := o.h.LinkByName(o.cfg.VXLAN)
	if err != nil {
		return out
	}
	idx := vx.Attrs().Index
	routes, err1 := o.h.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{LinkIndex: idx, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	neighs, err2 := o.h.NeighList(idx, netlink.FAMILY_V4)
	if err1 != nil || err2 != nil {
		return out
	}
	macs := map[netip.Addr]string{}
	for _, n := range neighs {
		if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok && len(n.HardwareAddr) == 6 {
			macs[ip] = string(n.HardwareAddr)
		}
	}
	for _, r := range routes {
		if gw, ok := netip.AddrFromSlice(r.Gw.To4()); ok && macs[gw] != "" {
			out[ipNetPrefix(r.Dst)] = macs[gw]
		}
	}
	return out
}

// setPeers converges the device to want. Caller holds mu.
func (o *Overlay) setPeers(want map[netip.Prefix]*peerState) error {
	vx, err := o.h.LinkByName(o.cfg.VXLAN)
	if err != nil {
		return fmt.Errorf("overlay: set peers: vxlan %s: %w", o.cfg.VXLAN, err)
	}
	idx := vx.Attrs().Index
	byVTEP := map[netip.Addr]*peerState{}
	byMAC := map[string]*peerState{}
	for _, p := range want {
		byVTEP[p.vtep] = p
		byMAC[string(p.VTEPMAC)] = p
	}

	var errs []error
	// Remove stale state first (routes, then neighbours, then FDB), then add
	// (FDB, neighbours, routes) so that a route never points at nothing.
	routes, err := o.h.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{LinkIndex: idx, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("overlay: set peers: list routes: %w", err)
	}
	for _, r := range routes {
		dst := ipNetPrefix(r.Dst)
		gw, _ := netip.AddrFromSlice(r.Gw.To4())
		if p, ok := want[dst]; ok && gw == p.vtep {
			continue
		}
		if r.Protocol == unix.RTPROT_KERNEL {
			continue
		}
		if err := o.h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %v via %v: %w", r.Dst, r.Gw, err))
		}
	}

	neighs, err := o.h.NeighList(idx, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("overlay: set peers: list neighbours: %w", err)
	}
	for _, n := range neighs {
		ip, _ := netip.AddrFromSlice(n.IP.To4())
		if p, ok := byVTEP[ip]; ok && n.State&unix.NUD_PERMANENT != 0 && bytes.Equal(n.HardwareAddr, p.VTEPMAC) {
			continue
		}
		if err := o.h.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete neighbour %v: %w", n.IP, err))
		}
	}

	fdb, err := o.h.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("overlay: set peers: list fdb: %w", err)
	}
	remotes := map[string]int{}
	for _, n := range fdb {
		remotes[string(n.HardwareAddr)]++
	}
	for _, n := range fdb {
		if len(n.HardwareAddr) != 6 || n.HardwareAddr[0]&1 != 0 || n.IP == nil {
			continue // multicast or not a unicast forwarding entry
		}
		// Kept only if it is the single remote of a wanted MAC; the
		// destination (address and port) is rewritten below anyway.
		if _, ok := byMAC[string(n.HardwareAddr)]; ok && remotes[string(n.HardwareAddr)] == 1 && n.State&unix.NUD_PERMANENT != 0 {
			continue
		}
		n.Flags = unix.NTF_SELF
		n.Family = unix.AF_BRIDGE
		if err := o.h.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete fdb %v dst %v: %w", n.HardwareAddr, n.IP, err))
		}
	}

	for _, p := range want {
		if err := o.fdbReplace(idx, p.VTEPMAC, p.Underlay, p.port); err != nil {
			errs = append(errs, fmt.Errorf("fdb %v dst %v:%d: %w", p.VTEPMAC, p.Underlay, p.port, err))
			continue
		}
		n := &netlink.Neigh{
			LinkIndex:    idx,
			Family:       netlink.FAMILY_V4,
			State:        unix.NUD_PERMANENT,
			IP:           net.IP(p.vtep.AsSlice()),
			HardwareAddr: p.VTEPMAC,
		}
		if err := o.h.NeighSet(n); err != nil {
			errs = append(errs, fmt.Errorf("neighbour %v lladdr %v: %w", p.vtep, p.VTEPMAC, err))
			continue
		}
		r := &netlink.Route{
			LinkIndex: idx,
			Dst:       prefixIPNet(p.Subnet),
			Gw:        net.IP(p.vtep.AsSlice()),
			Flags:     int(netlink.FLAG_ONLINK),
		}
		if err := o.h.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("route %v via %v: %w", p.Subnet, p.vtep, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("overlay: set peers: %w", err)
	}
	return nil
}

// validatePeers splits peers into those to apply, by subnet, and those
// refused (see SetPeers). Caller holds mu.
func (o *Overlay) validatePeers(peers []Peer) (map[netip.Prefix]*peerState, []Refused) {
	var refused []Refused
	type cand struct {
		Peer
		i int
	}
	var cands []cand
	for i, p := range peers {
		if p.Subnet == o.cfg.Subnet && bytes.Equal(p.VTEPMAC, o.vtepMAC) {
			continue // this node
		}
		if reason := o.checkPeer(p); reason != "" {
			refused = append(refused, Refused{Index: i, Peer: p, Reason: reason})
			continue
		}
		cands = append(cands, cand{p, i})
	}
	// Routed peers first, then narrower prefixes, then as listed.
	slices.SortStableFunc(cands, func(a, b cand) int {
		ra, rb := o.routed[a.Subnet] == string(a.VTEPMAC), o.routed[b.Subnet] == string(b.VTEPMAC)
		switch {
		case ra && !rb:
			return -1
		case rb && !ra:
			return 1
		}
		return cmp.Or(cmp.Compare(b.Subnet.Bits(), a.Subnet.Bits()), cmp.Compare(a.i, b.i))
	})
	want := map[netip.Prefix]*peerState{}
	macs := map[string]netip.Prefix{}
	for _, c := range cands {
		p := c.Peer
		reason := ""
		for s := range want {
			if s.Overlaps(p.Subnet) {
				reason = fmt.Sprintf("%v overlaps the subnet %v of another peer", p.Subnet, s)
				break
			}
		}
		if s, dup := macs[string(p.VTEPMAC)]; dup && reason == "" {
			reason = fmt.Sprintf("VTEP MAC %v is also the MAC of peer %v", p.VTEPMAC, s)
		}
		if reason != "" {
			refused = append(refused, Refused{Index: c.i, Peer: p, Reason: reason})
			continue
		}
		macs[string(p.VTEPMAC)] = p.Subnet
		port := p.Port
		if port == 0 {
			port = o.cfg.Port
		}
		p.VTEPMAC = append(net.HardwareAddr(nil), p.VTEPMAC...)
		want[p.Subnet] = &peerState{Peer: p, vtep: p.Subnet.Addr(), port: port}
	}
	slices.SortFunc(refused, func(a, b Refused) int { return cmp.Compare(a.Index, b.Index) })
	return want, refused
}

// checkPeer says what is wrong with one peer on its own, or "".
func (o *Overlay) checkPeer(p Peer) string {
	if err := checkSubnet(p.Subnet); err != nil {
		return "subnet " + err.Error()
	}
	if n := o.cfg.Network; n.IsValid() && (p.Subnet.Bits() < n.Bits() || !n.Contains(p.Subnet.Addr())) {
		return fmt.Sprintf("subnet %v is outside the instance network %v", p.Subnet, n)
	}
	if p.Subnet.Overlaps(o.cfg.Subnet) {
		return fmt.Sprintf("subnet %v overlaps this node's subnet %v", p.Subnet, o.cfg.Subnet)
	}
	if len(p.VTEPMAC) != 6 || p.VTEPMAC[0]&1 != 0 || bytes.Equal(p.VTEPMAC, make([]byte, 6)) {
		return fmt.Sprintf("VTEP MAC %q is not a unicast MAC address", p.VTEPMAC)
	}
	if bytes.Equal(p.VTEPMAC, o.vtepMAC) {
		return fmt.Sprintf("VTEP MAC %v is this node's", p.VTEPMAC)
	}
	if !p.Underlay.Is4() || p.Underlay.IsUnspecified() {
		return fmt.Sprintf("underlay %v is not an IPv4 address", p.Underlay)
	}
	if n := o.cfg.Network; n.IsValid() && n.Contains(p.Underlay) {
		return fmt.Sprintf("underlay %v lies inside the instance network %v", p.Underlay, n)
	}
	if p.Port < 0 || p.Port > 65535 {
		return fmt.Sprintf("port %d not in 0..65535", p.Port)
	}
	return ""
}

// fdbReplace adds or replaces the permanent FDB entry mac → dst:port on the
// VXLAN device (`bridge fdb replace <mac> dev <vxlan> dst <dst> port <port>
// self permanent`). The netlink package cannot set NDA_PORT, hence the raw
// message.
func (o *Overlay) fdbReplace(ifindex int, mac net.HardwareAddr, dst netip.Addr, port int) error {
	req := &nl.NetlinkRequest{
		NlMsghdr: unix.NlMsghdr{
			Len:   uint32(unix.SizeofNlMsghdr),
			Type:  unix.RTM_NEWNEIGH,
			Flags: unix.NLM_F_REQUEST | unix.NLM_F_CREATE | unix.NLM_F_REPLACE | unix.NLM_F_ACK,
		},
		Sockets: o.sockets,
	}
	req.AddData(&netlink.Ndmsg{
		Family: unix.AF_BRIDGE,
		Index:  uint32(ifindex),
		State:  unix.NUD_PERMANENT,
		Flags:  unix.NTF_SELF,
	})
	req.AddData(nl.NewRtAttr(unix.NDA_LLADDR, []byte(mac)))
	d := dst.As4()
	req.AddData(nl.NewRtAttr(unix.NDA_DST, d[:]))
	req.AddData(nl.NewRtAttr(ndaPort, []byte{byte(port >> 8), byte(port)}))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}
