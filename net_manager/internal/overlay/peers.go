package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

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

// SetPeers converges the forwarding state of the VXLAN device to exactly
// peers: per peer a route "Subnet via <Subnet's .0> dev vxlan onlink", a
// permanent neighbour entry <Subnet's .0> → VTEPMAC and a permanent FDB entry
// VTEPMAC → Underlay:Port on the VXLAN device. Entries of peers no longer
// listed are removed. A peer with this node's own subnet is ignored; invalid,
// duplicate or overlapping peers are an error and change nothing.
func (o *Overlay) SetPeers(peers []Peer) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.h == nil {
		return errors.New("overlay: closed")
	}
	want, err := o.validatePeers(peers)
	if err != nil {
		return fmt.Errorf("overlay: set peers: %w", err)
	}
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

func (o *Overlay) validatePeers(peers []Peer) (map[netip.Prefix]*peerState, error) {
	want := map[netip.Prefix]*peerState{}
	macs := map[string]netip.Prefix{}
	for i, p := range peers {
		if p.Subnet == o.cfg.Subnet {
			continue
		}
		if err := checkSubnet(p.Subnet); err != nil {
			return nil, fmt.Errorf("peers[%d].Subnet: %w", i, err)
		}
		if p.Subnet.Overlaps(o.cfg.Subnet) {
			return nil, fmt.Errorf("peers[%d].Subnet: %v overlaps this node's subnet %v", i, p.Subnet, o.cfg.Subnet)
		}
		if len(p.VTEPMAC) != 6 || p.VTEPMAC[0]&1 != 0 || bytes.Equal(p.VTEPMAC, make([]byte, 6)) {
			return nil, fmt.Errorf("peers[%d].VTEPMAC: %q is not a unicast MAC address", i, p.VTEPMAC)
		}
		if !p.Underlay.Is4() || p.Underlay.IsUnspecified() {
			return nil, fmt.Errorf("peers[%d].Underlay: %v is not an IPv4 address", i, p.Underlay)
		}
		if p.Port < 0 || p.Port > 65535 {
			return nil, fmt.Errorf("peers[%d].Port: %d not in 0..65535", i, p.Port)
		}
		for s := range want {
			if s.Overlaps(p.Subnet) {
				return nil, fmt.Errorf("peers[%d].Subnet: %v overlaps the subnet %v of another peer", i, p.Subnet, s)
			}
		}
		if s, dup := macs[string(p.VTEPMAC)]; dup {
			return nil, fmt.Errorf("peers[%d].VTEPMAC: %v is also the MAC of peer %v", i, p.VTEPMAC, s)
		}
		macs[string(p.VTEPMAC)] = p.Subnet
		port := p.Port
		if port == 0 {
			port = o.cfg.Port
		}
		p.VTEPMAC = append(net.HardwareAddr(nil), p.VTEPMAC...)
		want[p.Subnet] = &peerState{Peer: p, vtep: p.Subnet.Addr(), port: port}
	}
	return want, nil
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
