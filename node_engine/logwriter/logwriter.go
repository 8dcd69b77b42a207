// Package logwriter is the log writer of one instance: a small process
// that reads an instance's output from pipes and appends each line to the
// instance's log file as a record with its time and stream (package
// logline). containerd's shim starts one for each container task (a
// binary:// log URI); the unikernel runtime starts one for each virtual
// machine's serial console. It outlives the node engine (it is not its
// child, or not only), so a node engine restart loses no output.
//
// One runs per instance, so it must stay small: this package and the
// program thicket-log-writer (node_engine/cmd/thicket-log-writer) link the
// standard library and package logline only. thicket-node answers the same
// command line (a fallback when thicket-log-writer is not installed beside
// it), at about four times the memory: its whole binary initialises.
package logwriter

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/thicket-edge/thicket/contract/logline"
)

// Arg is the first argument of a log writer: a program started as
// `<program> Arg <log file>` runs Run and exits. It is also the name of
// the log writer program.
const Arg = "thicket-log-writer"

// Run is the log writer process of one instance. It reads the instance's
// stdout on fd 3 and its stderr on fd 4, closes fd 5 once ready
// (containerd's shim waits for that), and appends each line to file as a
// record until both streams end. All three must be open when it starts
// (the Go runtime takes the lowest free descriptors for itself): a
// unikernel's console, one stream, comes with /dev/null as fds 4 and 5.
// The SIGTERM the shim sends at the end is ignored so that what the
// instance wrote last is still written.
func Run(file string) error {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if ready := os.NewFile(5, "ready"); ready != nil {
		ready.Close()
	}
	if err != nil {
		return fmt.Errorf("log writer: %w", err)
	}
	defer f.Close()
	rec := NewRecords(f)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []string{logline.Stdout, logline.Stderr} {
		in := os.NewFile(uintptr(3+i), s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer in.Close()
			w := rec.Stream(s)
			// A small buffer: lines are split by Stream, whatever the reads.
			_, err := io.CopyBuffer(onlyWriter{w}, onlyReader{in}, make([]byte, 4<<10))
			errs[i] = errors.Join(err, w.Close())
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// onlyReader and onlyWriter hide ReadFrom/WriteTo so that io.CopyBuffer
// uses its buffer.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// Program is the log writer program for a node engine whose executable is
// exe: thicket-log-writer in the same directory if it is there, else exe
// itself (thicket-node answers the same command line, at a higher cost);
// fallback reports the latter.
func Program(exe string) (program string, fallback bool) {
	p := filepath.Join(filepath.Dir(exe), Arg)
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return p, false
	}
	return exe, true
}
