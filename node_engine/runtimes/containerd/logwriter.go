package containerd

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// LogWriterArg is the first argument of the log writer process: a program
// started as `<program> LogWriterArg <log file>` (thicket-node, or a test
// binary) runs RunLogWriter and exits.
const LogWriterArg = "thicket-log-writer"

// logURI is the binary:// log URI of a task whose output goes to file: the
// shim starts the log writer with that file as argument.
func logURI(program, file string) (*url.URL, error) {
	if program == "" {
		return nil, errors.New("no log writer program")
	}
	return &url.URL{Scheme: "binary", Path: program, RawQuery: url.Values{LogWriterArg: {file}}.Encode()}, nil
}

// RunLogWriter is the log writer process of one task. The containerd shim
// starts it (a binary:// log URI) with the task's stdout on fd 3, its
// stderr on fd 4 and fd 5 to close once ready; it appends each line to
// file as a timestamped record (runtimes.LogRecords) until both streams
// end, which is when the task is deleted. It outlives the node engine (it
// is the shim's child), so a node engine restart loses no output; the
// SIGTERM the shim sends at the end is ignored so that what the task wrote
// last is still written.
func RunLogWriter(file string) error {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	ready := os.NewFile(5, "ready")
	if ready != nil {
		ready.Close()
	}
	if err != nil {
		return fmt.Errorf("log writer: %w", err)
	}
	defer f.Close()
	rec := runtimes.NewLogRecords(f)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []string{wire.StreamStdout, wire.StreamStderr} {
		in := os.NewFile(uintptr(3+i), s)
		if in == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer in.Close()
			w := rec.Stream(s)
			_, err := io.Copy(w, in)
			errs[i] = errors.Join(err, w.Close())
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
