package unikernel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestConsoleWriter writes a fake serial console (firmware escape
// sequences, CRLF line ends, a line longer than a record, a last line
// without its newline) to the console's log writer (this test binary, see
// TestMain) and reads the log as Logs does: every line a record with its
// time and stream, clean.
func TestConsoleWriter(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, fileConsole)
	errLog, err := os.Create(filepath.Join(dir, fileQemuLog))
	if err != nil {
		t.Fatal(err)
	}
	defer errLog.Close()
	t0 := time.Now()
	pipe, wait, err := startConsoleWriter(os.Args[0], file, errLog)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", wire.MaxLogLineBytes+10)
	for _, chunk := range []string{"\x1bc\x1b[2JSeaBIOS\r\n", "Linux ver", "sion 6.1\r\n", long + "\r\n", "\r\n", "powering off"} {
		if _, err := pipe.WriteString(chunk); err != nil {
			t.Fatal(err)
		}
	}
	pipe.Close() // qemu exits
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the log writer did not end when its console closed")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := os.ReadFile(errLog.Name()); len(e) > 0 {
		t.Errorf("log writer errors: %s", e)
	}
	got := wire.ParseLog(string(cleanConsole(b)))
	want := []string{"SeaBIOS", "Linux version 6.1", long, "", "powering off"}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d: %q", len(got), len(want), b)
	}
	for i, l := range got {
		if l.Text != want[i] || l.Stream != wire.StreamStdout || l.Time.Before(t0.Add(-time.Second)) || l.Time.After(time.Now()) {
			t.Errorf("line %d: %q %q at %v, want %q on stdout with the time it was written", i, l.Text, l.Stream, l.Time, want[i])
		}
	}
}
