package runtimes

import (
	"os"
	"syscall"
	"time"
)

// RecentUse keeps a cached item (module, image) that a Start used this
// recently from the disk-budget collector (node_engine/internal/diskgc),
// so that it is never removed between the Start's fetch and the instance
// reading it.
const RecentUse = time.Minute

// TouchUsed marks a cached file or directory as used now (its access and
// modification times), for the collector's least-recently-used order.
func TouchUsed(path string) {
	now := time.Now()
	_ = os.Chtimes(path, now, now)
}

// LastUsed is the later of a file's access and modification times.
func LastUsed(fi os.FileInfo) time.Time {
	t := fi.ModTime()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if a := time.Unix(st.Atim.Sec, st.Atim.Nsec); a.After(t) {
			t = a
		}
	}
	return t
}
