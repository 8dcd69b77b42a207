package overlay

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestOwnerAlias(t *testing.T) {
	if got := ownerAlias("/var/lib/thicket/net"); got != "thicket-net:/var/lib/thicket/net" {
		t.Errorf("ownerAlias = %q", got)
	}
	long := "/" + strings.Repeat("d", 300)
	a := ownerAlias(long)
	if len(a) > maxAlias || !strings.HasPrefix(a, aliasPrefix+"sha256:") || a != ownerAlias(long) || a == ownerAlias(long+"x") {
		t.Errorf("ownerAlias(300 bytes) = %q", a)
	}
}

// TestSetupOwner: Setup marks the devices with the Owner, refuses another
// owner's devices before changing anything, adopts its own and unmarked ones
// whose addresses fit, and refuses unmarked ones of another subnet with a
// clear error.
func TestSetupOwner(t *testing.T) {
	n1, n2 := newTopology(t)
	cfgA := n1.cfg
	cfgA.Owner = "/data/a"
	o, err := n1.setup(t, cfgA)
	if err != nil {
		t.Fatal(err)
	}
	br, vx := link(t, o.h, "thk0"), link(t, o.h, "thkvx0")
	for _, l := range []netlink.Link{br, vx} {
		if l.Attrs().Alias != "thicket-net:/data/a" {
			t.Errorf("%s: alias %q, want thicket-net:/data/a", l.Attrs().Name, l.Attrs().Alias)
		}
	}
	checkOwner := func(owner string) error {
		return inNetns(n1.handle, func() error { return CheckOwner(Config{Owner: owner}) })
	}
	if err := checkOwner("/data/a"); err != nil {
		t.Errorf("CheckOwner by the owner: %v", err)
	}
	if err := checkOwner(""); err != nil {
		t.Errorf("CheckOwner without an owner: %v", err)
	}

	// Another owner: refused, by Setup and CheckOwner, nothing changed.
	cfgB := cfgA
	cfgB.Owner = "/data/b"
	want := "thk0 belongs to the thicket-net with --data-dir /data/a, not to this one (--data-dir /data/b): " +
		"run this one with --data-dir /data/a, or, if that node is gone, remove its devices: " +
		"ip link del thk0; ip link del thkvx0 (scripts/stop.sh --purge removes them with the rest of that node)"
	for name, err := range map[string]error{"Setup": second(n1.setup(t, cfgB)), "CheckOwner": checkOwner("/data/b")} {
		var ce *ConflictError
		if !errors.As(err, &ce) || ce.Owner != "/data/a" || err.Error() != want {
			t.Errorf("%s by another owner: %v\nwant %s", name, err, want)
		}
	}
	for _, l := range []netlink.Link{br, vx} {
		now := link(t, o.h, l.Attrs().Name)
		if now.Attrs().Index != l.Attrs().Index || now.Attrs().Alias != l.Attrs().Alias {
			t.Errorf("%s changed by a refused Setup: index %d alias %q", now.Attrs().Name, now.Attrs().Index, now.Attrs().Alias)
		}
	}

	// The owner adopts its devices.
	if o2, err := n1.setup(t, cfgA); err != nil || link(t, o2.h, "thk0").Attrs().Index != br.Attrs().Index {
		t.Errorf("Setup by the owner: %v", err)
	}

	// Unmarked devices (an older version) are adopted when they fit, and
	// marked.
	for _, l := range []netlink.Link{br, vx} {
		if err := o.h.LinkSetAlias(l, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n1.setup(t, cfgB); err != nil {
		t.Fatalf("Setup on unmarked devices of the same subnet: %v", err)
	}
	for _, l := range []netlink.Link{br, vx} {
		now := link(t, o.h, l.Attrs().Name)
		if now.Attrs().Index != l.Attrs().Index || now.Attrs().Alias != "thicket-net:/data/b" {
			t.Errorf("%s after adoption: index %d (was %d), alias %q", now.Attrs().Name, now.Attrs().Index, l.Attrs().Index, now.Attrs().Alias)
		}
	}

	// An unmarked bridge of another subnet (made by hand): a clear error,
	// nothing made or marked.
	run(t, "ip", "-n", n2.ns, "link", "add", "thk0", "type", "bridge")
	run(t, "ip", "-n", n2.ns, "addr", "add", "10.64.9.1/24", "dev", "thk0")
	cfgC := n2.cfg
	cfgC.Owner = "/data/c"
	_, err = n2.setup(t, cfgC)
	want = "thk0 already has address 10.64.9.1/24, outside this node's subnet 10.64.2.0/24 (it wants 10.64.2.1/24): " +
		"another thicket-net (an older version, or with another --data-dir) or someone else set it up for another subnet; " +
		"remove the devices: ip link del thk0; ip link del thkvx0 (scripts/stop.sh --purge removes them with the rest of that node), " +
		"or run this thicket-net in another network namespace"
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Addr != netip.MustParsePrefix("10.64.9.1/24") || err.Error() != want {
		t.Errorf("Setup on a bridge of another subnet: %v\nwant %s", err, want)
	}
	h2 := nsHandle(t, "/run/netns/"+n2.ns)
	if a := link(t, h2, "thk0").Attrs().Alias; a != "" {
		t.Errorf("refused bridge marked %q", a)
	}
	if _, err := h2.LinkByName("thkvx0"); !isNotFound(err) {
		t.Errorf("refused Setup made thkvx0: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }
