package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Defaults for the zero fields of Config.
const (
	DefaultBridge      = "thk0"
	DefaultVXLAN       = "thkvx0"
	DefaultVNI         = 4242
	DefaultPort        = 4789
	DefaultMTU         = 1450
	DefaultNetnsPrefix = "thk-"

	// vxlanOverhead is what VXLAN over IPv4 adds to a frame:
	// outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14).
	vxlanOverhead = 50
)

// Config describes the datapath of one node.
type Config struct {
	Bridge string // bridge device, default "thk0"
	VXLAN  string // VXLAN device, default "thkvx0"
	VNI    int    // VXLAN network identifier, default 4242
	Port   int    // UDP port the VXLAN device listens on (and sends to by default), default 4789

	// Subnet is this node's instance subnet, an IPv4 network with at most 30
	// prefix bits (10.64.3.0/24). The bridge gets its first address
	// (10.64.3.1/24, the instances' gateway), the VXLAN device its network
	// address as a /32 (10.64.3.0/32, the VTEP address).
	Subnet netip.Prefix

	// Underlay is this node's own underlay address: the VXLAN device's local
	// (source) address, and how the default MTU is found. Behind NAT pass the
	// local address here and advertise the public address and port to peers
	// (they put it in their Peer.Underlay and Peer.Port). If no interface of
	// this namespace holds Underlay, the device is created without a local
	// address and the kernel picks the source address per packet.
	Underlay netip.Addr

	// MTU of the VXLAN device, the bridge and the instance veths. Default:
	// MTU of the interface holding Underlay minus 50, or 1450.
	MTU int

	// NetnsPrefix starts the name of every instance namespace of this node
	// (/run/netns/<NetnsPrefix><encoded key>); default "thk-". It must end
	// with '-' and must differ between nodes sharing /run/netns (several
	// "nodes" on one machine): the daemon passes a node-specific prefix.
	NetnsPrefix string

	// Owner names the thicket-net that manages the bridge and the VXLAN
	// device: its data dir. Setup marks both devices with it (their alias,
	// "thicket-net:" + Owner) and refuses devices marked with another
	// Owner (a *ConflictError); unmarked devices are adopted, and marked,
	// when their addresses fit. Empty: devices are neither marked nor
	// checked.
	Owner string

	// Network is the whole instance network (the root's
	// --instance-network): SetPeers refuses a peer whose subnet does not
	// lie inside it. Unset: peers are bounded by nothing but this node's
	// own subnet and each other.
	Network netip.Prefix
}

// Peer is another node of the overlay.
type Peer struct {
	Subnet   netip.Prefix     // the peer's instance subnet
	VTEPMAC  net.HardwareAddr // MAC address of the peer's VXLAN device (its Overlay.VTEPMAC)
	Underlay netip.Addr       // where VXLAN packets for the peer are sent (public address behind NAT)
	Port     int              // UDP port the peer receives VXLAN on; 0 = our Config.Port
}

// Attachment is an instance's network namespace.
type Attachment struct {
	Key string
	// IP is the address of eth0 in the namespace; the zero Addr if the
	// namespace has no usable eth0 (an interrupted Attach): Attach it again
	// or Detach it.
	IP    netip.Addr
	Netns string // path of the namespace, /run/netns/<name>
}

// Overlay is the datapath of one node. It is bound to the network namespace
// that was current for the goroutine calling Setup; its methods may then be
// called from any goroutine, and are serialised.
type Overlay struct {
	cfg     Config
	gw      netip.Addr     // bridge address, first of Subnet
	vtep    netip.Addr     // VXLAN address, network address of Subnet
	local   netip.Addr     // VXLAN local address, or invalid
	ns      netns.NsHandle // the node's namespace
	h       *netlink.Handle
	sockets map[int]*nl.SocketHandle // raw netlink socket in ns (FDB entries with ports)
	vtepMAC net.HardwareAddr
	mu      sync.Mutex
	// routed: the subnets the last SetPeers routed, to their VTEP MACs;
	// they keep their place against a newcomer that overlaps them.
	routed map[netip.Prefix]string
}

// withNames fills in the default device names.
func (c Config) withNames() Config {
	if c.Bridge == "" {
		c.Bridge = DefaultBridge
	}
	if c.VXLAN == "" {
		c.VXLAN = DefaultVXLAN
	}
	return c
}

func (c Config) withDefaults() (Config, error) {
	c = c.withNames()
	if c.VNI == 0 {
		c.VNI = DefaultVNI
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.NetnsPrefix == "" {
		c.NetnsPrefix = DefaultNetnsPrefix
	}
	for _, n := range []struct{ field, name string }{{"Bridge", c.Bridge}, {"VXLAN", c.VXLAN}} {
		if len(n.name) >= unix.IFNAMSIZ || strings.ContainsAny(n.name, "/ \t\n:") {
			return c, fmt.Errorf("overlay config: %s: %q is not a valid interface name (at most 15 bytes)", n.field, n.name)
		}
	}
	if c.Bridge == c.VXLAN {
		return c, fmt.Errorf("overlay config: Bridge and VXLAN are both %q", c.Bridge)
	}
	if c.VNI < 1 || c.VNI > 1<<24-1 {
		return c, fmt.Errorf("overlay config: VNI: %d not in 1..16777215", c.VNI)
	}
	if c.Port < 1 || c.Port > 65535 {
		return c, fmt.Errorf("overlay config: Port: %d not in 1..65535", c.Port)
	}
	if err := checkSubnet(c.Subnet); err != nil {
		return c, fmt.Errorf("overlay config: Subnet: %w", err)
	}
	if !c.Underlay.Is4() {
		return c, fmt.Errorf("overlay config: Underlay: %v is not an IPv4 address", c.Underlay)
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535) {
		return c, fmt.Errorf("overlay config: MTU: %d not in 576..65535", c.MTU)
	}
	if err := validPrefix(c.NetnsPrefix); err != nil {
		return c, fmt.Errorf("overlay config: NetnsPrefix: %w", err)
	}
	return c, nil
}

func checkSubnet(p netip.Prefix) error {
	if !p.IsValid() || !p.Addr().Is4() {
		return fmt.Errorf("%v is not an IPv4 prefix", p)
	}
	if p.Masked() != p {
		return fmt.Errorf("%v is not a network address (want %v)", p, p.Masked())
	}
	if p.Bits() > 30 {
		return fmt.Errorf("%v: at most 30 prefix bits", p)
	}
	return nil
}

// Setup creates this node's bridge and VXLAN device in the current network
// namespace, or adopts them when they already exist with the same subnet
// (nothing is re-addressed, so running instances keep their network). A
// bridge or VXLAN device carrying an address of another subnet, or marked as
// another Owner's, is a *ConflictError, returned before anything changes:
// the devices belong to another node, or this node was set up for another
// subnet and must be purged (Teardown) first.
// A VXLAN device with another VNI, port or local address is re-created (its
// MAC address is derived from the subnet, so it stays the same, but its
// forwarding entries are gone: call SetPeers after every Setup). Setup also
// sets net.ipv4.ip_forward=1 in the namespace.
func Setup(cfg Config) (*Overlay, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ns, err := currentNetns()
	if err != nil {
		return nil, fmt.Errorf("overlay: current network namespace: %w", err)
	}
	o := &Overlay{
		cfg:  cfg,
		gw:   cfg.Subnet.Addr().Next(),
		vtep: cfg.Subnet.Addr(),
		ns:   ns,
	}
	if o.h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE); err != nil {
		ns.Close()
		return nil, fmt.Errorf("overlay: netlink handle: %w", err)
	}
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		o.Close()
		return nil, fmt.Errorf("overlay: netlink socket: %w", err)
	}
	o.sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}

	if err := o.setup(); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

func (o *Overlay) setup() error {
	under, underMTU, err := o.findUnderlay()
	if err != nil {
		return err
	}
	if under {
		o.local = o.cfg.Underlay
	}
	if o.cfg.MTU == 0 {
		o.cfg.MTU = DefaultMTU
		if underMTU > 0 {
			o.cfg.MTU = underMTU - vxlanOverhead
		}
	}
	// Refuse another owner's devices, or another subnet, before changing
	// anything.
	for _, c := range []struct {
		name string
		want netip.Prefix
	}{{o.cfg.Bridge, netip.PrefixFrom(o.gw, o.cfg.Subnet.Bits())}, {o.cfg.VXLAN, netip.PrefixFrom(o.vtep, 32)}} {
		l, err := o.h.LinkByName(c.name)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("overlay: %s: %w", c.name, err)
		}
		if err := o.checkOwner(l); err != nil {
			return err
		}
		if err := o.checkAddrs(l, c.want); err != nil {
			return err
		}
	}
	if err := o.ensureBridge(); err != nil {
		return err
	}
	if err := o.ensureVXLAN(); err != nil {
		return err
	}
	if err := inNetns(o.ns, func() error { return ensureSysctl("net/ipv4/ip_forward", "1") }); err != nil {
		return fmt.Errorf("overlay: enable ip_forward: %w", err)
	}
	return nil
}

// findUnderlay reports whether an interface of the namespace holds
// cfg.Underlay, and that interface's MTU.
func (o *Overlay) findUnderlay() (bool, int, error) {
	addrs, err := o.h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return false, 0, fmt.Errorf("overlay: list addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok || ip != o.cfg.Underlay {
			continue
		}
		l, err := o.h.LinkByIndex(a.LinkIndex)
		if err != nil {
			return false, 0, fmt.Errorf("overlay: underlay interface: %w", err)
		}
		return true, l.Attrs().MTU, nil
	}
	return false, 0, nil
}

func (o *Overlay) ensureBridge() error {
	name := o.cfg.Bridge
	l, err := o.h.LinkByName(name)
	if isNotFound(err) {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{
			Name: name,
			MTU:  o.cfg.MTU,
			// A fixed MAC: otherwise the bridge takes the lowest port MAC
			// and changes it as instances come and go, under the
			// instances' neighbour entries for their gateway.
			HardwareAddr: derivedMAC("thicket-bridge", o.cfg.Subnet.String()),
		}}
		if o.cfg.Owner != "" {
			br.Alias = ownerAlias(o.cfg.Owner)
		}
		if err := o.h.LinkAdd(br); err != nil {
			return fmt.Errorf("overlay: create bridge %s: %w", name, err)
		}
		l, err = o.h.LinkByName(name)
	}
	if err != nil {
		return fmt.Errorf("overlay: bridge %s: %w", name, err)
	}
	if l.Type() != "bridge" {
		return fmt.Errorf("overlay: %s exists and is a %s device, not a bridge", name, l.Type())
	}
	if err := o.bridgeNFCall(l); err != nil {
		return fmt.Errorf("overlay: bridge %s: pass bridged IPv4 through netfilter: %w", name, err)
	}
	return o.bringUp(l, netip.PrefixFrom(o.gw, o.cfg.Subnet.Bits()))
}

// bridgeNFCall sets the bridge's nf_call_iptables option (ip link set thk0
// type bridge nf_call_iptables 1): IPv4 bridged between two instances of
// this node then passes the ip family's netfilter hooks like routed
// traffic, so that tenant isolation (thicket-net's nftables guards) and
// conntrack see it. It needs br_netfilter in the kernel; without it the
// option does nothing (thicket-net warns).
func (o *Overlay) bridgeNFCall(l netlink.Link) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(l.Attrs().Index)
	req.AddData(msg)
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(unix.IFLA_BR_NF_CALL_IPTABLES, []byte{1})
	req.AddData(info)
	req.Sockets = o.sockets
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// bringUp gives one of the overlay's own devices its address, the owner's
// mark and the overlay's MTU, and sets it up.
func (o *Overlay) bringUp(l netlink.Link, addr netip.Prefix) error {
	name := l.Attrs().Name
	if err := o.ensureAddr(l, addr); err != nil {
		return err
	}
	if err := o.mark(l); err != nil {
		return err
	}
	if l.Attrs().MTU != o.cfg.MTU {
		if err := o.h.LinkSetMTU(l, o.cfg.MTU); err != nil {
			return fmt.Errorf("overlay: set MTU of %s to %d: %w", name, o.cfg.MTU, err)
		}
	}
	if err := o.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("overlay: set %s up: %w", name, err)
	}
	return nil
}

func (o *Overlay) ensureVXLAN() error {
	name := o.cfg.VXLAN
	want := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{
			Name:         name,
			MTU:          o.cfg.MTU,
			HardwareAddr: derivedMAC("thicket-vtep", o.cfg.Subnet.String()),
		},
		VxlanId:  o.cfg.VNI,
		Port:     o.cfg.Port,
		Learning: false,
	}
	if o.cfg.Owner != "" {
		want.Alias = ownerAlias(o.cfg.Owner)
	}
	if o.local.IsValid() {
		want.SrcAddr = net.IP(o.local.AsSlice())
	}
	l, err := o.h.LinkByName(name)
	switch {
	case isNotFound(err):
	case err != nil:
		return fmt.Errorf("overlay: vxlan %s: %w", name, err)
	default:
		v, ok := l.(*netlink.Vxlan)
		if !ok {
			return fmt.Errorf("overlay: %s exists and is a %s device, not vxlan", name, l.Type())
		}
		if v.VxlanId == want.VxlanId && v.Port == want.Port && v.SrcAddr.Equal(want.SrcAddr) && !v.Learning && v.Group == nil {
			break
		}
		// Parameters that cannot change in place: re-create (same MAC; the
		// daemon's next SetPeers restores the forwarding entries).
		if err := o.h.LinkDel(l); err != nil {
			return fmt.Errorf("overlay: delete %s to re-create it: %w", name, err)
		}
		l = nil
	}
	if l == nil {
		if err := o.h.LinkAdd(want); err != nil {
			return fmt.Errorf("overlay: create vxlan %s (vni %d, port %d): %w", name, o.cfg.VNI, o.cfg.Port, err)
		}
		if l, err = o.h.LinkByName(name); err != nil {
			return fmt.Errorf("overlay: vxlan %s: %w", name, err)
		}
	}
	if err := o.bringUp(l, netip.PrefixFrom(o.vtep, 32)); err != nil {
		return err
	}
	o.vtepMAC = append(net.HardwareAddr(nil), l.Attrs().HardwareAddr...)
	return nil
}

// checkAddrs fails with a *ConflictError if l has an IPv4 address other
// than want.
func (o *Overlay) checkAddrs(l netlink.Link, want netip.Prefix) error {
	_, err := o.hasAddr(l, want)
	return err
}

// ensureAddr gives l the address want unless it has it; any other IPv4
// address on l is a *ConflictError (never re-address a node).
func (o *Overlay) ensureAddr(l netlink.Link, want netip.Prefix) error {
	have, err := o.hasAddr(l, want)
	if err != nil || have {
		return err
	}
	a := &netlink.Addr{IPNet: prefixIPNet(want)}
	if err := o.h.AddrAdd(l, a); err != nil {
		return fmt.Errorf("overlay: add %v to %s: %w", want, l.Attrs().Name, err)
	}
	return nil
}

func (o *Overlay) hasAddr(l netlink.Link, want netip.Prefix) (bool, error) {
	addrs, err := o.h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return false, fmt.Errorf("overlay: addresses of %s: %w", l.Attrs().Name, err)
	}
	have := false
	for _, a := range addrs {
		p := ipNetPrefix(a.IPNet)
		if p == want {
			have = true
			continue
		}
		e := o.conflict(l)
		e.Addr, e.Want, e.Subnet = p, want, o.cfg.Subnet
		return false, e
	}
	return have, nil
}

// VTEPMAC is the MAC address of this node's VXLAN device, which peers put in
// their Peer.VTEPMAC. It is derived from the subnet (a re-created device gets
// the same one), unless an adopted device already had another.
func (o *Overlay) VTEPMAC() net.HardwareAddr {
	return append(net.HardwareAddr(nil), o.vtepMAC...)
}

// Config returns the configuration in effect, defaults filled in.
func (o *Overlay) Config() Config { return o.cfg }

// Gateway is the bridge address, the instances' default gateway.
func (o *Overlay) Gateway() netip.Addr { return o.gw }

// Close releases the Overlay's file descriptors; the datapath stays as it is.
func (o *Overlay) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.h != nil {
		o.h.Close()
		o.h = nil
	}
	for _, s := range o.sockets {
		s.Close()
	}
	o.sockets = nil
	var err error
	if o.ns.IsOpen() {
		err = o.ns.Close()
		o.ns = netns.None()
	}
	return err
}

// Teardown removes every instance namespace of this node (NetnsPrefix), the
// VXLAN device and the bridge. Processes still running in an instance
// namespace keep it alive but lose its name and its veth. ip_forward is left
// as it is.
func (o *Overlay) Teardown() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.h == nil {
		return errors.New("overlay: closed")
	}
	var errs []error
	names, err := o.netnsNames()
	if err != nil {
		errs = append(errs, err)
	}
	for key := range names {
		if err := o.detach(key); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range []string{o.cfg.VXLAN, o.cfg.Bridge} {
		l, err := o.h.LinkByName(name)
		if isNotFound(err) {
			continue
		}
		if err == nil {
			err = o.h.LinkDel(l)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("overlay: delete %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func ipNetPrefix(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones)
}

// ensureSysctl sets /proc/sys/<path> to value unless it already has it
// (so a read-only /proc/sys is fine when nothing needs changing). It acts on
// the network namespace of the calling thread.
func ensureSysctl(path, value string) error {
	p := "/proc/sys/" + path
	cur, err := os.ReadFile(p)
	if err == nil && strings.TrimSpace(string(cur)) == value {
		return nil
	}
	return os.WriteFile(p, []byte(value+"\n"), 0o644)
}
