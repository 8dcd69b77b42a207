package runtimes

import (
	"bytes"
	"io"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// LogRecords writes the output streams of one instance to one log as
// timestamped records (wire.AppendLogRecord), line by line, so that
// stdout and stderr stay apart and each line says when it was written.
// Its streams may be written concurrently.
type LogRecords struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	buf []byte
}

// NewLogRecords writes records to w (a log file opened for appending).
func NewLogRecords(w io.Writer) *LogRecords {
	return &LogRecords{w: w, now: time.Now}
}

// Stream is the writer of one stream (wire.StreamStdout or StreamStderr).
// Close it when the stream ends: its last line, even without a newline,
// is then written.
func (l *LogRecords) Stream(name string) *LogStream {
	return &LogStream{l: l, name: name}
}

// LogStream is one output stream of a LogRecords.
type LogStream struct {
	l    *LogRecords
	name string
	mu   sync.Mutex
	line []byte // the line begun and not yet ended
}

// Write writes each line p ends as a record; a line longer than
// wire.MaxLogLineBytes is written in parts.
func (s *LogStream) Write(p []byte) (int, error) {
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
		for len(s.line) > wire.MaxLogLineBytes {
			if err := s.l.write(s.name, true, s.line[:wire.MaxLogLineBytes]); err != nil {
				return 0, err
			}
			s.line = append(s.line[:0], s.line[wire.MaxLogLineBytes:]...)
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
func (s *LogStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.line) == 0 {
		return nil
	}
	err := s.l.write(s.name, false, s.line)
	s.line = nil
	return err
}

func (l *LogRecords) write(stream string, partial bool, text []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = wire.AppendLogRecord(l.buf[:0], l.now(), stream, partial, text)
	_, err := l.w.Write(l.buf)
	return err
}
