package unikernel

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// qmpConn is a connection to a QEMU Machine Protocol monitor (JSON lines
// over a unix socket), past the capabilities negotiation.
type qmpConn struct {
	c  net.Conn
	rd *bufio.Reader
}

// qmpMessage is any message qemu sends.
type qmpMessage struct {
	QMP    json.RawMessage `json:"QMP,omitempty"`
	Return json.RawMessage `json:"return,omitempty"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error,omitempty"`
	Event string          `json:"event,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// dialQMP connects to the monitor at socket, reads its greeting and
// negotiates capabilities, all within timeout. A monitor that serves
// another client does not greet: that is a timeout.
func dialQMP(ctx context.Context, socket string, timeout time.Duration) (*qmpConn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := dialUnix(ctx, socket)
	if err != nil {
		return nil, err
	}
	q := &qmpConn{c: c, rd: bufio.NewReader(c)}
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	m, err := q.read()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	if m.QMP == nil {
		c.Close()
		return nil, errors.New("qmp: no greeting")
	}
	if _, err := q.execute("qmp_capabilities", nil, nil); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return q, nil
}

// dialUnix connects to a unix socket. A path too long for a socket address
// is reached through /proc/self/fd and a descriptor of its directory.
func dialUnix(ctx context.Context, socket string) (net.Conn, error) {
	var d net.Dialer
	if len(socket) < 100 {
		return d.DialContext(ctx, "unix", socket)
	}
	dir, err := os.OpenFile(filepath.Dir(socket), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return d.DialContext(ctx, "unix", "/proc/self/fd/"+strconv.Itoa(int(dir.Fd()))+"/"+filepath.Base(socket))
}

func (q *qmpConn) Close() error { return q.c.Close() }

func (q *qmpConn) read() (qmpMessage, error) {
	line, err := q.rd.ReadBytes('\n')
	if err != nil {
		return qmpMessage{}, err
	}
	var m qmpMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return qmpMessage{}, fmt.Errorf("qmp: bad message %.100q: %w", line, err)
	}
	return m, nil
}

// execute runs a command and returns its result; events read meanwhile go
// to onEvent (if not nil).
func (q *qmpConn) execute(cmd string, args any, onEvent func(qmpMessage)) (json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	for {
		m, err := q.read()
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", cmd, err)
		}
		switch {
		case m.Error != nil:
			return nil, fmt.Errorf("qmp %s: %s: %s", cmd, m.Error.Class, m.Error.Desc)
		case m.Return != nil:
			return m.Return, nil
		case m.Event != "" && onEvent != nil:
			onEvent(m)
		}
	}
}

// qmpCommand runs one command on the monitor at socket.
func qmpCommand(ctx context.Context, socket, cmd string, timeout time.Duration) error {
	q, err := dialQMP(ctx, socket, timeout)
	if err != nil {
		return err
	}
	defer q.Close()
	_ = q.c.SetDeadline(time.Now().Add(timeout))
	_, err = q.execute(cmd, nil, nil)
	return err
}
