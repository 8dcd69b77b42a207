package logwriter_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/logwriter"
)

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == logwriter.Arg { // this binary as a log writer
		if err := logwriter.Run(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRun runs the log writer as a process, as the shim (two streams and a
// ready pipe) and as the unikernel runtime (one stream) start it.
func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		streams int
		write   []string // per stream
		want    []wire.LogLine
	}{
		{"container: stdout and stderr", 2, []string{"one\ntwo", "oops\n"},
			[]wire.LogLine{{Stream: "stdout", Text: "one"}, {Stream: "stdout", Text: "two"}, {Stream: "stderr", Text: "oops"}}},
		{"console: one stream", 1, []string{"booting\r\nready\n"},
			[]wire.LogLine{{Stream: "stdout", Text: "booting\r"}, {Stream: "stdout", Text: "ready"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "log")
			cmd := exec.Command(os.Args[0], logwriter.Arg, file)
			var writers []*os.File
			for range tt.streams {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				cmd.ExtraFiles = append(cmd.ExtraFiles, r)
				writers = append(writers, w)
			}
			if tt.streams == 1 { // no stderr (as the unikernel runtime starts it)
				null, err := os.Open(os.DevNull)
				if err != nil {
					t.Fatal(err)
				}
				cmd.ExtraFiles = append(cmd.ExtraFiles, null)
			}
			ready, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer ready.Close()
			cmd.ExtraFiles = append(cmd.ExtraFiles, w)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			for _, f := range cmd.ExtraFiles {
				f.Close()
			}
			if _, err := ready.Read(make([]byte, 1)); err == nil { // closed once ready
				t.Error("ready pipe: read data, want EOF")
			}
			// In order: the second stream's lines after the first's.
			for i, w := range writers {
				if _, err := w.WriteString(tt.write[i]); err != nil {
					t.Fatal(err)
				}
				w.Close()
				if i == 0 && len(writers) > 1 {
					waitLines(t, file, strings.Count(tt.write[0], "\n")+1)
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("log writer: %v: %s", err, stderr.String())
			}
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := wire.ParseLog(string(b))
			if len(got) != len(tt.want) {
				t.Fatalf("lines %q, want %d", b, len(tt.want))
			}
			for i, l := range got {
				if l.Time.IsZero() || l.Stream != tt.want[i].Stream || l.Text != tt.want[i].Text {
					t.Errorf("line %d = %+v, want %+v with a time", i, l, tt.want[i])
				}
			}
		})
	}
}

// waitLines waits until file holds n lines.
func waitLines(t *testing.T, file string, n int) {
	t.Helper()
	for range 500 {
		if b, _ := os.ReadFile(file); strings.Count(string(b), "\n") >= n {
			return
		}
		exec.Command("sleep", "0.01").Run()
	}
	t.Fatalf("%s: fewer than %d lines", file, n)
}

func TestProgram(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "thicket-node")
	if p, fallback := logwriter.Program(exe); p != exe || !fallback {
		t.Errorf("without thicket-log-writer: %s %v, want %s true", p, fallback, exe)
	}
	lw := filepath.Join(dir, logwriter.Arg)
	if err := os.WriteFile(lw, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, fallback := logwriter.Program(exe); p != exe || !fallback {
		t.Errorf("thicket-log-writer not executable: %s %v, want %s true", p, fallback, exe)
	}
	if err := os.Chmod(lw, 0o755); err != nil {
		t.Fatal(err)
	}
	if p, fallback := logwriter.Program(exe); p != lw || fallback {
		t.Errorf("with thicket-log-writer: %s %v, want %s false", p, fallback, lw)
	}
}
