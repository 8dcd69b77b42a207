package overlay

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// aliasPrefix starts the interface alias (IFLA_IFALIAS, `ip link show`'s
// "alias") by which Setup marks the bridge and VXLAN device as
// Config.Owner's.
const aliasPrefix = "thicket-net:"

// maxAlias is the longest alias the kernel keeps (IFALIASZ less the NUL).
const maxAlias = 255

// ownerAlias is the alias marking a device as owner's: aliasPrefix + owner,
// or, for an owner too long for an alias, aliasPrefix + "sha256:" + 32 hex
// digits of its hash.
func ownerAlias(owner string) string {
	a := aliasPrefix + owner
	if len(a) > maxAlias {
		sum := sha256.Sum256([]byte(owner))
		a = aliasPrefix + "sha256:" + hex.EncodeToString(sum[:16])
	}
	return a
}

// markedOwner is the owner a device's alias names, if it has such an alias.
func markedOwner(l netlink.Link) (string, bool) {
	return strings.CutPrefix(l.Attrs().Alias, aliasPrefix)
}

// ConflictError is Setup's (or CheckOwner's) answer when a device this node
// needs is in the way; nothing was changed. Either the device is marked as
// another owner's (Owner is set), or it holds an address outside this node's
// subnet (Addr is set). Error() is one line that names the device, what is in
// the way and how to resolve it.
type ConflictError struct {
	Device string // the device in the way (the bridge or the VXLAN device)
	Bridge string // this node's bridge and VXLAN device, named in the advice
	VXLAN  string
	Self   string // this node's Config.Owner

	// Owner is the other owner marked on Device, when that is the conflict.
	Owner string

	// Addr is the address in the way, when that is the conflict: Device
	// should hold Want, of this node's Subnet. MarkedBy is the owner marked
	// on Device, if any (Self: this thicket-net set it up for another
	// subnet).
	Addr, Want, Subnet netip.Prefix
	MarkedBy           string
	Marked             bool
}

func (e *ConflictError) Error() string {
	remove := fmt.Sprintf("ip link del %s; ip link del %s (scripts/stop.sh --purge removes them with the rest of that node)", e.Bridge, e.VXLAN)
	if e.Owner != "" {
		return fmt.Sprintf("%s belongs to the thicket-net with --data-dir %s, not to this one (--data-dir %s): "+
			"run this one with --data-dir %s, or, if that node is gone, remove its devices: %s",
			e.Device, e.Owner, e.Self, e.Owner, remove)
	}
	who := "another thicket-net (an older version, or with another --data-dir) or someone else"
	switch {
	case e.Marked && e.MarkedBy == e.Self:
		who = "this thicket-net (--data-dir " + e.Self + ")"
	case e.Marked:
		who = "the thicket-net with --data-dir " + e.MarkedBy
	}
	return fmt.Sprintf("%s already has address %v, outside this node's subnet %v (it wants %v): %s set it up for another subnet; "+
		"remove the devices: %s, or run this thicket-net in another network namespace",
		e.Device, e.Addr, e.Subnet, e.Want, who, remove)
}

// CheckOwner fails with a *ConflictError when the bridge or VXLAN device of
// cfg (default names for empty ones) exists in the current network namespace
// marked as the device of an owner other than cfg.Owner. Setup checks the
// same (and the addresses): CheckOwner is for a node that has no subnet yet.
func CheckOwner(cfg Config) error {
	cfg = cfg.withNames()
	ns, err := currentNetns()
	if err != nil {
		return fmt.Errorf("overlay: current network namespace: %w", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("overlay: netlink handle: %w", err)
	}
	defer h.Close()
	o := &Overlay{cfg: cfg, h: h}
	for _, name := range []string{cfg.Bridge, cfg.VXLAN} {
		l, err := h.LinkByName(name)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("overlay: %s: %w", name, err)
		}
		if err := o.checkOwner(l); err != nil {
			return err
		}
	}
	return nil
}

// checkOwner fails if l is marked as another owner's. Without an Owner
// nothing is checked.
func (o *Overlay) checkOwner(l netlink.Link) error {
	if o.cfg.Owner == "" {
		return nil
	}
	owner, ok := markedOwner(l)
	if !ok || owner == "" || aliasPrefix+owner == ownerAlias(o.cfg.Owner) {
		return nil
	}
	e := o.conflict(l)
	e.Owner = owner
	return e
}

// conflict starts the ConflictError of device l.
func (o *Overlay) conflict(l netlink.Link) *ConflictError {
	e := &ConflictError{Device: l.Attrs().Name, Bridge: o.cfg.Bridge, VXLAN: o.cfg.VXLAN, Self: o.cfg.Owner}
	e.MarkedBy, e.Marked = markedOwner(l)
	return e
}

// mark records the Owner in l's alias (a device created by an older
// version, or adopted from a previous run, gets it now).
func (o *Overlay) mark(l netlink.Link) error {
	if o.cfg.Owner == "" || l.Attrs().Alias == ownerAlias(o.cfg.Owner) {
		return nil
	}
	if err := o.h.LinkSetAlias(l, ownerAlias(o.cfg.Owner)); err != nil {
		return fmt.Errorf("overlay: mark %s as %s's: %w", l.Attrs().Name, o.cfg.Owner, err)
	}
	return nil
}
