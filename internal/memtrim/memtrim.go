//go:build linux

// Package memtrim gives back to the kernel the pages of a daemon's own
// program code that it no longer uses: the --trim-memory behaviour of
// thicket-node and thicket-net.
//
// A Go daemon's code is read from its executable as it runs. Starting up
// touches the init code of every package, and the kernel maps 64 KiB around
// each page it faults in, so an idle worker agent held 18 of its 23 MB
// (thicket-node) and 8 of its 11 MB (thicket-net) as pages of its binary it
// used once. Trim asks the kernel to page out the executable's read-only
// mappings (MADV_PAGEOUT, Linux 5.4+); what the daemon still runs faults
// back in at once (about 0.5 MB for an idle thicket-net), the rest stays
// out until it is needed again. Android compacts its cached apps the same
// way. Only clean, read-only pages of the binary are concerned: nothing is
// written to swap and no data is lost. With the code, the free pages of the
// heap go back to the kernel at once (debug.FreeOSMemory).
package memtrim

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// madvPageout is MADV_PAGEOUT (Linux 5.4).
const madvPageout = 21

// Region is a mapping of the executable.
type Region struct {
	Start, End uintptr
}

// Regions returns the read-only mappings of path in a /proc/<pid>/maps
// listing.
func Regions(maps string, path string) ([]Region, error) {
	var out []Region
	sc := bufio.NewScanner(strings.NewReader(maps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[5] != path || len(f[1]) < 2 || f[1][1] == 'w' {
			continue
		}
		from, to, ok := strings.Cut(f[0], "-")
		if !ok {
			return nil, fmt.Errorf("maps: bad range %q", f[0])
		}
		a, err := strconv.ParseUint(from, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("maps: bad range %q", f[0])
		}
		b, err := strconv.ParseUint(to, 16, 64)
		if err != nil || b <= a {
			return nil, fmt.Errorf("maps: bad range %q", f[0])
		}
		out = append(out, Region{uintptr(a), uintptr(b)})
	}
	return out, sc.Err()
}

// Trim pages out this process's read-only mappings of its executable and
// answers how many bytes they span.
//
// Paging out alone leaves the pages in the page cache, and a page that
// faults back in then brings the 64 KiB around it (the kernel's
// fault-around maps every cached neighbour): with 20 instances thicket-node
// had 15 MB of its binary resident again within seconds of a trim, for the
// few hundred pages of code and tables it runs. So Trim also marks the
// mappings MADV_RANDOM (a fault reads no pages ahead) and drops the
// binary's pages that no process maps from the page cache
// (POSIX_FADV_DONTNEED): what runs again comes back a page at a time, read
// from the file (a major fault, about 60 µs each here).
func Trim() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	rs, err := Regions(string(maps), exe)
	if err != nil {
		return 0, err
	}
	for _, r := range rs {
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, r.Start, r.End-r.Start, syscall.MADV_RANDOM); e != 0 {
			return 0, fmt.Errorf("madvise(MADV_RANDOM): %w", e)
		}
	}
	n := 0
	for _, r := range rs {
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, r.Start, r.End-r.Start, madvPageout); e != 0 {
			return n, fmt.Errorf("madvise(MADV_PAGEOUT): %w", e)
		}
		n += int(r.End - r.Start)
	}
	return n, dropCache()
}

// dropCache drops the pages of this process's executable that no process
// maps from the page cache. /proc/self/exe opens it also when its path was
// replaced (an upgrade).
func dropCache() error {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	defer f.Close()
	// A binary written moments ago (installed, built) has dirty pages,
	// which neither paging out nor this drop can release: write them back.
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("fdatasync: %w", err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("fadvise(POSIX_FADV_DONTNEED): %w", err)
	}
	return nil
}

// Trimming is the --trim-memory flag, for embedding in a daemon's kong
// command line.
type Trimming struct {
	TrimMemory bool `name:"trim-memory" default:"true" negatable:"" env:"THICKET_TRIM_MEMORY" help:"Page out the program's code it no longer runs: 10 s after the start, 10 s after a burst of work (instances started or stopped, the network changed; at most once a minute) and every 10 minutes (Linux 5.4+; what runs again is read back from the binary). --no-trim-memory keeps it resident."`
}

// Start trims in the background as the flag says, until ctx ends.
func (f Trimming) Start(ctx context.Context, log *slog.Logger) {
	if f.TrimMemory {
		go Run(ctx, Schedule{First: 10 * time.Second, Quiet: 10 * time.Second, Gap: time.Minute, Period: 10 * time.Minute}, log)
	}
}

// worked carries Worked's news to Run.
var worked = make(chan struct{}, 1)

// Worked says the process did work that brought code in (an instance
// started, a network changed): Run trims again once it has been quiet for
// a while.
func Worked() {
	select {
	case worked <- struct{}{}:
	default:
	}
}

// Schedule says when Run trims.
type Schedule struct {
	First  time.Duration // after the start
	Quiet  time.Duration // after the last Worked
	Gap    time.Duration // at least between two trims after work
	Period time.Duration // at the latest after the last trim
}

// next answers when to trim after work at now, the last trim at last.
func (s Schedule) next(now, last time.Time) time.Time {
	return maxTime(now.Add(s.Quiet), last.Add(s.Gap))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Run trims as sched says, until ctx ends. A kernel without MADV_PAGEOUT is
// logged once at debug level and left alone.
func Run(ctx context.Context, sched Schedule, log *slog.Logger) {
	t := time.NewTimer(sched.First)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-worked:
			t.Reset(time.Until(sched.next(time.Now(), last)))
			continue
		case <-t.C:
		}
		// The heap a burst of work left behind goes back too, rather than
		// at the scavenger's pace.
		debug.FreeOSMemory()
		n, err := Trim()
		if err != nil {
			log.Debug("memory trim not available", "err", err)
			return
		}
		log.Debug("paged out the program's unused code", "mapped_bytes", n)
		last = time.Now()
		t.Reset(sched.Period)
	}
}
