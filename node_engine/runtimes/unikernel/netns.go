package unikernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Devices in an instance's network namespace.
const (
	nsEth = "eth0" // made by the net manager
	nsTap = "tap0" // made here
)

// guestNet is what the guest needs to take over eth0's place.
type guestNet struct {
	Addr    netip.Prefix
	Gateway netip.Addr // invalid if no default route
	MAC     net.HardwareAddr
	MTU     int
}

// kernelIP is the kernel's ip= parameter for n:
// ip=<client>::<gateway>:<netmask>::<device>:off.
func (n guestNet) kernelIP() string {
	gw := ""
	if n.Gateway.IsValid() {
		gw = n.Gateway.String()
	}
	mask := net.IP(net.CIDRMask(n.Addr.Bits(), 32)).String()
	return fmt.Sprintf("ip=%s::%s:%s::eth0:off", n.Addr.Addr(), gw, mask)
}

// setupNet joins a new tap device to eth0 in the namespace at nsPath (see
// the package documentation) and returns the tap, open, for qemu.
// Leftovers of an earlier run are replaced.
func setupNet(nsPath string) (*os.File, guestNet, error) {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, guestNet{}, fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, guestNet{}, fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	defer h.Close()

	eth, err := h.LinkByName(nsEth)
	if err != nil {
		return nil, guestNet{}, fmt.Errorf("%s in %s: %w", nsEth, nsPath, err)
	}
	gn := guestNet{MAC: eth.Attrs().HardwareAddr, MTU: eth.Attrs().MTU}
	addrs, err := h.AddrList(eth, netlink.FAMILY_V4)
	if err != nil {
		return nil, guestNet{}, fmt.Errorf("addresses of %s in %s: %w", nsEth, nsPath, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok || !ip.IsGlobalUnicast() {
			continue
		}
		bits, _ := a.Mask.Size()
		gn.Addr = netip.PrefixFrom(ip, bits)
		break
	}
	if !gn.Addr.IsValid() {
		return nil, guestNet{}, fmt.Errorf("%s in %s has no IPv4 address", nsEth, nsPath)
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, guestNet{}, fmt.Errorf("routes in %s: %w", nsPath, err)
	}
	for _, rt := range routes {
		if (rt.Dst == nil || rt.Dst.IP.IsUnspecified() && isZeroMask(rt.Dst.Mask)) && rt.Gw != nil {
			if gw, ok := netip.AddrFromSlice(rt.Gw.To4()); ok {
				gn.Gateway = gw
				break
			}
		}
	}

	// Leftovers of an earlier run.
	if err := teardownLinks(h); err != nil {
		return nil, guestNet{}, err
	}

	tap, err := openTap(ns, nsTap)
	if err != nil {
		return nil, guestNet{}, fmt.Errorf("tap %s in %s: %w", nsTap, nsPath, err)
	}
	fail := func(err error) (*os.File, guestNet, error) {
		tap.Close()
		_ = teardownLinks(h)
		return nil, guestNet{}, err
	}
	tl, err := h.LinkByName(nsTap)
	if err != nil {
		return fail(fmt.Errorf("%s in %s: %w", nsTap, nsPath, err))
	}
	if err := h.LinkSetMTU(tl, gn.MTU); err != nil {
		return fail(fmt.Errorf("MTU of %s: %w", nsTap, err))
	}
	if err := h.LinkSetUp(tl); err != nil {
		return fail(fmt.Errorf("set %s up: %w", nsTap, err))
	}
	if eth.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(eth); err != nil {
			return fail(fmt.Errorf("set %s up: %w", nsEth, err))
		}
	}
	if err := redirect(h, eth, tl); err != nil {
		return fail(err)
	}
	if err := redirect(h, tl, eth); err != nil {
		return fail(err)
	}
	return tap, gn, nil
}

// redirect sends every frame arriving on from out of to: an ingress qdisc
// on from with a match-all u32 filter whose action is a mirred egress
// redirect.
func redirect(h *netlink.Handle, from, to netlink.Link) error {
	q := ingressQdisc(from)
	if err := h.QdiscAdd(q); err != nil {
		return fmt.Errorf("ingress qdisc on %s: %w", from.Attrs().Name, err)
	}
	f := &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: from.Attrs().Index,
			Parent:    netlink.MakeHandle(0xffff, 0),
			Priority:  1,
			Protocol:  unix.ETH_P_ALL,
		},
		// No selector: the library matches everything.
		Actions: []netlink.Action{netlink.NewMirredAction(to.Attrs().Index)},
	}
	if err := h.FilterAdd(f); err != nil {
		return fmt.Errorf("redirect %s to %s (tc u32 + mirred): %w", from.Attrs().Name, to.Attrs().Name, err)
	}
	return nil
}

func ingressQdisc(l netlink.Link) *netlink.Ingress {
	return &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: l.Attrs().Index,
		Handle:    netlink.MakeHandle(0xffff, 0),
		Parent:    netlink.HANDLE_INGRESS,
	}}
}

// teardownNet removes what setupNet made in the namespace at nsPath: the
// redirect off eth0 and the tap. A namespace that is gone is not an error.
func teardownNet(nsPath string) error {
	if _, err := os.Stat(nsPath); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	defer h.Close()
	return teardownLinks(h)
}

func teardownLinks(h *netlink.Handle) error {
	if eth, err := h.LinkByName(nsEth); err == nil {
		if err := h.QdiscDel(ingressQdisc(eth)); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove the ingress qdisc of %s: %w", nsEth, err)
		}
	}
	if tl, err := h.LinkByName(nsTap); err == nil {
		if err := h.LinkDel(tl); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete %s: %w", nsTap, err)
		}
	}
	return nil
}

func isNotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENODEV)
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

// openTap creates the tap device name in namespace ns and returns it open
// (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, not persistent: it goes away with the
// last descriptor, i.e. with qemu). /dev/net/tun is opened on a thread
// that joined ns, which makes the device belong there; the thread is never
// handed back to the Go scheduler.
func openTap(ns netns.NsHandle, name string) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // not unlocked on purpose: the thread dies with the goroutine
		if err := netns.Set(ns); err != nil {
			ch <- result{err: fmt.Errorf("join network namespace: %w", err)}
			return
		}
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: fmt.Errorf("open /dev/net/tun: %w", err)}
			return
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			ch <- result{err: err}
			return
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			ch <- result{err: fmt.Errorf("TUNSETIFF: %w", err)}
			return
		}
		ch <- result{f: os.NewFile(uintptr(fd), "/dev/net/tun:"+name)}
	}()
	res := <-ch
	return res.f, res.err
}
