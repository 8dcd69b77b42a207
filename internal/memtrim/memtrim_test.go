//go:build linux

package memtrim

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
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
