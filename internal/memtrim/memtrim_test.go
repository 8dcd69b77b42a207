//go:build linux

package memtrim

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestRegions(t *testing.T) {
	maps := `00400000-008b1000 r-xp 00000000 fe:00 10265205                           /usr/bin/thicket-net
008b1000-00d9c000 r--p 004b1000 fe:00 10265205                           /usr/bin/thicket-net
00d9c000-00dfd000 rw-p 0099c000 fe:00 10265205                           /usr/bin/thicket-net
00dfd000-02e40000 rw-p 00000000 00:00 0
c000000000-c000400000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--p 00000000 fe:00 42                         /usr/lib/other.so
`
	rs, err := Regions(maps, "/usr/bin/thicket-net")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0] != (Region{0x400000, 0x8b1000}) || rs[1] != (Region{0x8b1000, 0xd9c000}) {
		t.Fatalf("regions %+v", rs)
	}
	if _, err := Regions("zz-00400000 r-xp 0 0 0 /x\n", "/x"); err == nil {
		t.Error("a bad range is accepted")
	}
}

// fileRSS answers this process's resident pages of files, in kB.
func fileRSS(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// TestTrimGivesBackCode: the test binary's resident code shrinks, and the
// process keeps running (what it runs faults back in).
func TestTrimGivesBackCode(t *testing.T) {
	before := fileRSS(t)
	n, err := Trim()
	if err != nil {
		t.Fatalf("trim: %v (needs Linux 5.4 or later)", err)
	}
	after := fileRSS(t)
	if n == 0 || after >= before {
		t.Fatalf("trim of %d bytes: resident file pages %d kB before, %d kB after", n, before, after)
	}
	t.Logf("resident file pages: %d kB before, %d kB after", before, after)
}

func TestScheduleAfterWork(t *testing.T) {
	s := Schedule{Quiet: 10 * time.Second, Gap: time.Minute}
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name      string
		now, last time.Time
		want      time.Time
	}{
		{"never trimmed", t0, time.Time{}, t0.Add(10 * time.Second)},
		{"long after the last trim", t0, t0.Add(-5 * time.Minute), t0.Add(10 * time.Second)},
		{"right after a trim", t0, t0.Add(-20 * time.Second), t0.Add(40 * time.Second)},
	} {
		if got := s.next(c.now, c.last); !got.Equal(c.want) {
			t.Errorf("%s: next trim at %s, want %s", c.name, got, c.want)
		}
	}
}

// cached answers how many bytes of the file are in the page cache.
func cached(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n * os.Getpagesize()
}

// TestTrimDropsCachedCode: after a trim, the binary's pages that no process
// maps are out of the page cache, and its mappings read no pages ahead, so
// that what runs again comes back a page at a time, not with the 64 KiB
// around it (the kernel's fault-around maps every cached neighbour).
func TestTrimDropsCachedCode(t *testing.T) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	// All of it in the page cache first (as after a build or an earlier
	// test's trim).
	if _, err := os.ReadFile(exe); err != nil {
		t.Fatal(err)
	}
	before := cached(t, exe)
	if _, err := Trim(); err != nil {
		t.Fatalf("trim: %v (needs Linux 5.4 or later)", err)
	}
	after := cached(t, exe)
	t.Logf("%s in the page cache: %d kB before the trim, %d kB after", exe, before/1024, after/1024)
	// What the process maps again at once stays (and, on file systems with
	// large page-cache folios, the folio around it): about half of a test
	// binary; all of it stayed before the trim dropped any.
	if after > before*3/4 {
		t.Errorf("%d of %d kB of the binary still cached after a trim, want at most three quarters", after/1024, before/1024)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	mappings, random := 0, 0
	var inExe bool
	for _, l := range strings.Split(string(smaps), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 6 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			inExe = f[5] == exe && f[1][1] != 'w'
			if inExe {
				mappings++
			}
		case inExe && len(f) > 0 && f[0] == "VmFlags:":
			if slices.Contains(f[1:], "rr") {
				random++
			}
		}
	}
	if mappings == 0 || random != mappings {
		t.Errorf("%d of the %d read-only mappings of %s marked random read (MADV_RANDOM)", random, mappings, exe)
	}
}
