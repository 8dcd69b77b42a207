package unikernel

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/thicket-edge/thicket/node_engine/logwriter"
)

// startConsoleWriter starts the log writer of a machine's serial console
// (program, as Config.LogWriter): it appends each line qemu writes to the
// returned pipe to file as a record with its time and stream "stdout"
// (package logwriter), as containers' logs are written, until every
// holder of the pipe closed it: qemu's end, then. Its own errors go to
// errLog. It runs in a session of its own, so the node engine's death
// does not end it; wait reaps it (call it in a goroutine). The caller
// gives the pipe to qemu and closes its copy.
func startConsoleWriter(program, file string, errLog *os.File) (pipe *os.File, wait func(), err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("console log: %w", err)
	}
	defer r.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("console log: %w", err)
	}
	defer null.Close()
	cmd := exec.Command(program, logwriter.Arg, file)
	// fd 3 the console; one stream, so no stderr (fd 4) and no one waits
	// for ready (fd 5).
	cmd.ExtraFiles = []*os.File{r, null, null}
	cmd.Stdout, cmd.Stderr = errLog, errLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("console log writer: %w", err)
	}
	return w, func() { _ = cmd.Wait() }, nil
}
