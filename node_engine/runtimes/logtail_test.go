package runtimes_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// TestLogTails: LogTails gives what LogTail gives, through appends, a
// rotation (TrimLog), the file's removal and re-creation, and another
// bound; a file whose inode, size and modification time did not change is
// not read again.
func TestLogTails(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "i.log")
	w, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { w.Close() }()
	write := func(s string) {
		t.Helper()
		if _, err := w.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	var c runtimes.LogTails
	check := func(max int) string {
		t.Helper()
		got, err := c.Tail(file, max)
		want, werr := runtimes.LogTail(file, max)
		if got != want || (err == nil) != (werr == nil) {
			t.Fatalf("Tail(%d) = %q, %v; LogTail = %q, %v", max, got, err, want, werr)
		}
		return got
	}
	if _, err := c.Tail(file, 100); err != nil {
		t.Fatalf("Tail of an empty file: %v", err)
	}
	write("one\ntwo\n")
	if got := check(100); got != "one\ntwo\n" {
		t.Fatalf("Tail = %q", got)
	}
	write("three\n")
	check(100)
	check(8) // another bound: cut after the first cut line
	check(100)

	// Unchanged: not read again. The file's content is replaced by as
	// many other bytes, and its modification time set back, so only a
	// read would tell.
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	before := check(100)
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(strings.Repeat("z", int(fi.Size()))), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(file, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Tail(file, 100); got != before || err != nil {
		t.Fatalf("Tail of an unchanged file = %q, %v; want what was read before, %q", got, err, before)
	}
	// Touched: read again.
	if err := os.Chtimes(file, fi.ModTime(), fi.ModTime().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := check(100); !strings.HasPrefix(got, "zzz") {
		t.Fatalf("Tail after a change = %q", got)
	}

	// Rotated: the tail continues the rotated part.
	write(strings.Repeat("x", 50) + "\nfour\n")
	if rot, err := runtimes.TrimLog(file, 40); !rot || err != nil {
		t.Fatalf("TrimLog: %v, %v", rot, err)
	}
	if got := check(100); !strings.HasSuffix(got, "four\n") {
		t.Fatalf("Tail after the rotation = %q", got)
	}
	write("five\n")
	if got := check(100); !strings.HasSuffix(got, "four\nfive\n") {
		t.Fatalf("Tail after the rotation and a write = %q", got)
	}

	// Removed: an error that is os.ErrNotExist, and nothing kept.
	w.Close()
	if err := runtimes.RemoveLog(file); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tail(file, 100); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Tail of a removed file: %v, want os.ErrNotExist", err)
	}
	if c.Len() != 0 {
		t.Errorf("%d tails kept after the file was removed", c.Len())
	}
	// Made anew (another inode), with as many bytes as before: read.
	if w, err = os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		t.Fatal(err)
	}
	write("six\n")
	if got := check(100); got != "six\n" {
		t.Fatalf("Tail of the new file = %q", got)
	}
	c.Retain(func(string) bool { return false })
	if c.Len() != 0 {
		t.Errorf("Retain kept %d tails", c.Len())
	}
}
