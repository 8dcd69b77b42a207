package runtimes_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

func TestFileName(t *testing.T) {
	if runtimes.FileName("svc.0") != "svc.0" {
		t.Errorf("safe key changed")
	}
	if k := strings.Repeat("k", 64); runtimes.FileName(k) != k {
		t.Errorf("safe key of 64 characters changed")
	}
	for _, k := range []string{"../x", "a/b", "..", ".", "", strings.Repeat("k", 65)} {
		if n := runtimes.FileName(k); !strings.HasPrefix(n, "k-") || len(n) != 34 || strings.Contains(n, "/") {
			t.Errorf("FileName(%q) = %q", k, n)
		}
	}
	if runtimes.FileName("a/b") == runtimes.FileName("a/c") {
		t.Errorf("two keys share a file name")
	}
}

func TestLogTail(t *testing.T) {
	file := filepath.Join(t.TempDir(), "x.log")
	if _, err := runtimes.LogTail(file, 10); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want ErrNotExist", err)
	}
	if err := runtimes.WriteFileAtomic(file, []byte("one\ntwo\nthree\n")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		max  int
		want string
	}{
		{100, "one\ntwo\nthree\n"},
		{14, "one\ntwo\nthree\n"},
		{12, "two\nthree\n"}, // "e\ntwo\nthree\n": the cut line goes
		{6, "three\n"},       // nothing after the first newline: kept
		{4, "ree\n"},
		{0, ""},
	} {
		got, err := runtimes.LogTail(file, tc.max)
		if err != nil || got != tc.want {
			t.Errorf("LogTail(%d) = %q, %v; want %q", tc.max, got, err, tc.want)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	if len(entries) != 1 {
		t.Errorf("WriteFileAtomic left %d files", len(entries))
	}
}
