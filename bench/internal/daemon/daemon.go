// Package daemon runs the system's programs as child processes, with their
// output in a log file, and stops, kills (as a crash would) and restarts
// them.
package daemon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Proc is one daemon. Not safe for concurrent use.
type Proc struct {
	Name    string
	argv    []string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Start runs argv, appending its output to <logDir>/<name>.log. Programs
// run through "ip netns exec" or "nsenter" exec themselves in place, so the
// process measured is the daemon itself.
func Start(logDir, name string, argv ...string) (*Proc, error) {
	p := &Proc{Name: name, argv: argv, logPath: filepath.Join(logDir, strings.ReplaceAll(name, " ", "-")+".log")}
	if err := p.start(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Proc) start() error {
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(cmd, p.exited)
	return nil
}

// PID of the running process (0 when stopped).
func (p *Proc) PID() int {
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Kill ends the process with SIGKILL, as a crash would.
func (p *Proc) Kill() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

// Stop asks the process to end (SIGTERM) and kills it after the timeout.
func (p *Proc) Stop(timeout time.Duration) {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
}

// Restart starts the stopped process again with the same command line.
func (p *Proc) Restart() error {
	if p.cmd != nil {
		return fmt.Errorf("%s is running", p.Name)
	}
	return p.start()
}

// LogTail is the end of the process's log, for error messages.
func (p *Proc) LogTail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
