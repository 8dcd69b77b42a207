package logwriter

import (
	"bytes"
	"io"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/contract/logline"
)

// Records writes the output streams of one instance to one log as
// timestamped records (logline.Append), line by line, so that
// stdout and stderr stay apart and each line says when it was written.
// Its streams may be written concurrently.
type Records struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	buf []byte
}

// NewRecords writes records to w (a log file opened for appending).
func NewRecords(w io.Writer) *Records {
	return &Records{w: w, now: time.Now}
}

// Stream is the writer of one stream (logline.Stdout or logline.Stderr).
// Close it when the stream ends: its last line, even without a newline,
// is then written.
func (l *Records) Stream(name string) *Stream {
	return &Stream{l: l, name: name}
}

// Stream is one output stream of a Records.
type Stream struct {
	l    *Records
	name string
	mu   sync.Mutex
	line []byte // the line begun and not yet ended
}

// Write writes each line p ends as a record; a line longer than
// logline.MaxBytes is written in parts.
func (s *Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.line = append(s.line, p...)
			p = nil
		} else {
			s.line = append(s.line, p[:i]...)
			p = p[i+1:]
		}
		for len(s.line) > logline.MaxBytes {
			if err := s.l.write(s.name, true, s.line[:logline.MaxBytes]); err != nil {
				return 0, err
			}
			s.line = append(s.line[:0], s.line[logline.MaxBytes:]...)
		}
		if i >= 0 {
			if err := s.l.write(s.name, false, s.line); err != nil {
				return 0, err
			}
			s.line = s.line[:0]
		}
	}
	return n, nil
}

// Close writes the unfinished last line, if any.
func (s *Stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.line) == 0 {
		return nil
	}
	err := s.l.write(s.name, false, s.line)
	s.line = nil
	return err
}

func (l *Records) write(stream string, partial bool, text []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = logline.Append(l.buf[:0], l.now(), stream, partial, text)
	_, err := l.w.Write(l.buf)
	return err
}
