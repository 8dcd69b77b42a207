package runtimes

import (
	"os"
	"sync"
	"syscall"
	"time"
)

// LogTails is LogTail that reads a file again only when it changed: the
// engine asks for every instance's log tail at every report (each
// second), and an idle instance's log does not change for hours. A file
// that kept its inode, size and modification time since the last read
// gets the tail read then, after one stat instead of opening and reading
// it and its rotated part. Its writers only append to it, and TrimLog
// empties it whenever it replaces the rotated part, so an unchanged file
// has an unchanged tail.
//
// The zero LogTails is ready to use; it is safe for concurrent use.
type LogTails struct {
	mu sync.Mutex
	m  map[string]logTail
}

// logTail is the tail of a file read last, and the file's state then.
type logTail struct {
	ino      uint64
	size     int64
	mod      time.Time
	maxBytes int
	tail     string
}

// Tail is LogTail(file, maxBytes), from the last read when the file did
// not change since.
func (c *LogTails) Tail(file string, maxBytes int) (string, error) {
	// The file's state before it is read: a write between the two makes
	// the next call read it again, never keeps an older tail.
	fi, err := os.Stat(file)
	if err != nil {
		c.Forget(file)
		return "", err
	}
	key := logTail{size: fi.Size(), mod: fi.ModTime(), maxBytes: maxBytes}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		key.ino = st.Ino
	}
	c.mu.Lock()
	last, ok := c.m[file]
	c.mu.Unlock()
	if ok && last.ino == key.ino && last.size == key.size && last.mod.Equal(key.mod) && last.maxBytes == key.maxBytes {
		return last.tail, nil
	}
	tail, err := LogTail(file, maxBytes)
	if err != nil {
		c.Forget(file)
		return "", err
	}
	key.tail = tail
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]logTail{}
	}
	c.m[file] = key
	c.mu.Unlock()
	return tail, nil
}

// Forget drops what is kept of file (its instance was removed).
func (c *LogTails) Forget(file string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, file)
}

// Retain drops what is kept of the files keep rejects.
func (c *LogTails) Retain(keep func(file string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for f := range c.m {
		if !keep(f) {
			delete(c.m, f)
		}
	}
}
