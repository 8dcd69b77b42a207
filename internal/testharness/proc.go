package testharness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrPortTaken tells that a process exited during its start because
// another one took its port meanwhile (Port can only pick a port that is
// free now): start it again on another port.
var ErrPortTaken = errors.New("port taken meanwhile")

// Proc is a program run as a child process: started, stopped, killed (as
// a crash would) and started again with the same command line, its output
// kept. Set the fields, then call Start. Not safe for concurrent use, but
// for Log, Output, PID, Running and Exited.
type Proc struct {
	// Name names the process in errors and logs.
	Name string
	// Args is the command line, the program first. Programs run through
	// "ip netns exec" or "nsenter" exec themselves in place, so the process
	// is the program itself.
	Args []string
	// Env is added to the environment. The process does not inherit the
	// caller's THICKET_* variables: it is configured by Args and Env only.
	Env []string
	// LogFile, if set, receives the output (appended); else it is kept in
	// memory.
	LogFile string
	// StopTimeout is how long Stop waits after SIGTERM before it kills the
	// process; 20 s if zero.
	StopTimeout time.Duration

	log *Log
	// mark is where the output of the last start begins.
	mark   int
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs the process (again): its output is added to the same Log.
func (p *Proc) Start() error {
	if p.Running() {
		return fmt.Errorf("start %s: it is running", p.Name)
	}
	if len(p.Args) == 0 {
		return fmt.Errorf("start %s: no command line", p.Name)
	}
	if p.log == nil {
		p.log = &Log{path: p.LogFile}
	}
	p.mark = len(p.log.String())
	cmd := exec.Command(p.Args[0], p.Args[1:]...)
	cmd.Env = append(environ(), p.Env...)
	if p.LogFile != "" {
		f, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("start %s: %w", p.Name, err)
		}
		defer f.Close() // the child has its own
		cmd.Stdout, cmd.Stderr = f, f
	} else {
		cmd.Stdout, cmd.Stderr = p.log, p.log
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	return nil
}

// environ is this process's environment without THICKET_* variables.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "THICKET_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *Proc) current() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.exited
}

// Exited is closed when the process started last exits (nil before Start).
func (p *Proc) Exited() <-chan struct{} {
	_, exited := p.current()
	return exited
}

// Running reports whether the process started last has not exited.
func (p *Proc) Running() bool {
	cmd, exited := p.current()
	if cmd == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// PID of the running process, 0 if it is not running.
func (p *Proc) PID() int {
	if !p.Running() {
		return 0
	}
	cmd, _ := p.current()
	return cmd.Process.Pid
}

// Signal sends sig to the running process.
func (p *Proc) Signal(sig os.Signal) error {
	cmd, _ := p.current()
	if cmd == nil {
		return fmt.Errorf("signal %s: not started", p.Name)
	}
	return cmd.Process.Signal(sig)
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Proc) Kill() {
	cmd, exited := p.current()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

// Stop asks the process to end (SIGTERM) and waits for it; after
// StopTimeout it kills it and says so.
func (p *Proc) Stop() error {
	cmd, exited := p.current()
	if cmd == nil {
		return nil
	}
	timeout := p.StopTimeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s did not stop within %s of SIGTERM; killed", p.Name, timeout)
	}
}

// Log is the output of every start (nil before the first).
func (p *Proc) Log() *Log { return p.log }

// Output is the output of every start so far.
func (p *Proc) Output() string {
	if p.log == nil {
		return ""
	}
	return p.log.String()
}

// WaitUntil polls ready until it holds. It fails when the process exits
// first (with ErrPortTaken if its port was taken), when timeout passes or
// ctx ends; the error holds the end of the output.
func (p *Proc) WaitUntil(ctx context.Context, timeout time.Duration, what string, ready func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	exited := p.Exited()
	for {
		if ready() {
			return nil
		}
		select {
		case <-exited:
			if strings.Contains(p.sinceStart(), "address already in use") {
				return fmt.Errorf("%s: %w", p.Name, ErrPortTaken)
			}
			return fmt.Errorf("%s exited before %s:\n%s", p.Name, what, Tail(p.Output(), 4000))
		case <-ctx.Done():
			return fmt.Errorf("%s: not %s within %s (%w):\n%s", p.Name, what, timeout, ctx.Err(), Tail(p.Output(), 4000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitOutput waits until the output of the last start holds s, as
// WaitUntil.
func (p *Proc) WaitOutput(ctx context.Context, timeout time.Duration, s string) error {
	return p.WaitUntil(ctx, timeout, fmt.Sprintf("logging %q", s), func() bool { return strings.Contains(p.sinceStart(), s) })
}

func (p *Proc) sinceStart() string {
	out := p.Output()
	if p.mark > len(out) {
		return out
	}
	return out[p.mark:]
}

// Log is a process's output, in memory or in its LogFile. Safe for
// concurrent use.
type Log struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	path string
}

// Write adds to the output kept in memory.
func (l *Log) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

// String is the whole output.
func (l *Log) String() string {
	if l.path != "" {
		b, _ := os.ReadFile(l.path)
		return string(b)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Tail is the end of s, at most n bytes, marked if cut.
func Tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// Port returns a TCP port nobody listens on right now, on any address.
func Port() (int, error) {
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
