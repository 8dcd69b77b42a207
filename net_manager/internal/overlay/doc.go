// Package overlay is the kernel datapath of thicket-net: a bridge per node,
// a network namespace per instance joined to the bridge by a veth pair, and
// a routed (flannel-style, L3) VXLAN overlay between nodes. Everything goes
// through netlink (github.com/vishvananda/netlink); no packet passes through
// user space.
//
// # Addressing
//
// A node with subnet 10.64.3.0/24 has:
//
//	thk0    bridge, 10.64.3.1/24, the instances' gateway
//	thkvx0  vxlan (VNI 4242, UDP 4789, nolearning, local = underlay), 10.64.3.0/32
//
// and per peer with subnet 10.64.2.0/24, VTEP MAC m, underlay u:
//
//	ip route replace 10.64.2.0/24 via 10.64.2.0 dev thkvx0 onlink
//	ip neigh replace 10.64.2.0 lladdr m dev thkvx0 nud permanent
//	bridge fdb replace m dev thkvx0 dst u port 4789 self permanent
//
// An instance namespace holds eth0 with its address and a default route via
// the bridge address. Traffic to another node is routed by the node onto the
// VXLAN device, whose neighbour and FDB entries are all static: no ARP or
// flooding crosses the underlay.
//
// # Namespaces and state
//
// An Overlay acts on the network namespace current for the goroutine that
// called Setup (the daemon runs inside the node's namespace); it keeps a
// netlink handle to it, so later calls may come from any goroutine. Instance
// namespaces are bind mounts under /run/netns, compatible with `ip netns`.
//
// No state is kept outside the kernel. The instance key is encoded
// reversibly in the namespace name (NetnsName: NetnsPrefix + key with bytes
// other than letters, digits and '.' escaped as _xx); the IP is read back
// from eth0. The host end of the veth is "thk" + 8 hex digits of a hash of
// the key, with the key as its interface alias (visible in `ip link`).
// The bridge and VXLAN MAC addresses are derived from the subnet (and VNI),
// so a re-created device gets the same address.
//
// # Ownership
//
// The bridge and the VXLAN device are a resource of the network namespace:
// two thicket-net must not share them. With Config.Owner set (thicket-net
// passes its data dir), Setup records the owner in both devices' alias
// ("thicket-net:/var/lib/thicket/net", shown by `ip link`) and refuses, with
// a *ConflictError and before changing anything, devices marked with another
// owner or holding an address of another subnet. Devices without the mark
// (an older version, or made by hand) are adopted, and marked, when their
// addresses fit. CheckOwner does the owner check alone, for a node that has
// no subnet yet. (That two thicket-net never run in one namespace at once is
// the daemon's lock, not the overlay's business.)
package overlay
