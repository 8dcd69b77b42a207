package runtimes_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestKeepFilesBounded: files matching a pattern across instance
// directories (the unikernels' console logs, which qemu appends to) are
// rotated while their writer goes on, and a rotated part whose instance
// is gone is removed.
func TestKeepFilesBounded(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a", "console.log")
	gone := filepath.Join(dir, "b", "console.log.1")
	for _, f := range []string{a, gone} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(gone, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(a, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(bytes.Repeat([]byte("x"), 10_000)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	runtimes.KeepFilesBounded(ctx, &wg, filepath.Join(dir, "*", "console.log"), 4096, slog.New(slog.NewTextHandler(io.Discard, nil)))
	time.Sleep(runtimes.LogTrimEvery + time.Second)
	cancel()
	wg.Wait()
	if _, err := w.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	cur, _ := os.ReadFile(a)
	prev, _ := os.ReadFile(a + ".1")
	if string(cur) != "after" || len(prev) != 10_000 {
		t.Errorf("after a trim: console.log %q, its rotated part %d bytes; want \"after\" and 10000", cur, len(prev))
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("rotated part of a removed instance: %v, want it gone", err)
	}
}
