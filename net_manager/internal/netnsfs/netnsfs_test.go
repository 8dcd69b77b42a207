package netnsfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

func TestCreateDelete(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test creates network namespaces and must run as root")
	}
	name := fmt.Sprintf("thkfs%d", os.Getpid())
	path, err := Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Delete(name) })
	if path != filepath.Join(Dir, name) || !IsMount(path) {
		t.Fatalf("Create returned %s, bound: %v", path, IsMount(path))
	}
	if _, err := Create(name); err == nil {
		t.Error("creating an existing namespace again succeeded")
	}
	// A namespace of its own, not the caller's.
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	self, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	if ns.Equal(self) {
		t.Error("the created namespace is the caller's")
	}
	ns.Close()
	self.Close()
	// iproute2 sees it, and Dir is a shared mount point as `ip netns` makes it.
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil || !strings.Contains(string(out), name) {
		t.Errorf("ip netns list: %v %s", err, out)
	}
	if out, err := exec.Command("findmnt", "-n", "-o", "PROPAGATION", Dir).CombinedOutput(); err != nil || !strings.Contains(string(out), "shared") {
		t.Errorf("%s is not a shared mount point: %v %q", Dir, err, out)
	}
	if IsMount(filepath.Join(Dir, "thkfs-no-such")) {
		t.Error("IsMount of a missing file")
	}
	if err := Delete(name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("%s still there after Delete: %v", path, err)
	}
	if err := Delete(name); err != nil {
		t.Errorf("deleting a missing namespace: %v", err)
	}
}
