package runtimes_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// TestTrimLog: a log larger than its bound becomes its rotated part and is
// emptied in place (a writer holding it open for appending goes on at its
// new end, without a hole); the tail reads across both parts; RemoveLog
// removes both.
func TestTrimLog(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "i.log")
	w, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	write := func(s string) {
		t.Helper()
		if _, err := w.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write("one\ntwo\n")
	if rot, err := runtimes.TrimLog(file, 100); rot || err != nil {
		t.Fatalf("TrimLog of a small file: %v, %v", rot, err)
	}
	write(strings.Repeat("x", 100) + "\nthree\n")
	if rot, err := runtimes.TrimLog(file, 100); !rot || err != nil {
		t.Fatalf("TrimLog of a large file: %v, %v", rot, err)
	}
	write("four\n")
	if b, _ := os.ReadFile(file); string(b) != "four\n" {
		t.Errorf("after rotation the writer appends at the new end: %q", b)
	}
	if b, _ := os.ReadFile(file + ".1"); !strings.HasPrefix(string(b), "one\ntwo\n") || !strings.HasSuffix(string(b), "three\n") {
		t.Errorf("rotated part: %q", b)
	}
	for _, c := range []struct {
		max  int
		want string
	}{
		{5, "four\n"},
		{11, "three\nfour\n"},
		{1000, "one\ntwo\n" + strings.Repeat("x", 100) + "\nthree\nfour\n"},
	} {
		if got, err := runtimes.LogTail(file, c.max); got != c.want || err != nil {
			t.Errorf("LogTail(%d) = %q, %v; want %q", c.max, got, err, c.want)
		}
	}
	if err := runtimes.RemoveLog(file); err != nil {
		t.Fatal(err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Errorf("RemoveLog left %v", es)
	}
	if rot, err := runtimes.TrimLog(file, 100); rot || err != nil {
		t.Errorf("TrimLog of a missing file: %v, %v", rot, err)
	}
}
