package wire

import (
	"strings"
	"time"

	"github.com/thicket-edge/thicket/contract/logline"
)

// The lines of InstanceStatus.Logs. A node writes each line of an
// instance's output as
//
//	<time, RFC 3339 with nanoseconds, UTC> <stdout|stderr> <F|P> <text>
//
// (the CRI log format of Kubernetes): F ends a line, P is a part of a line
// longer than MaxLogLineBytes that the next record continues. A line in any
// other form (written by an older node, whose unikernels' serial consoles
// had no clock) is text only: no time, stream "".
const (
	StreamStdout = logline.Stdout
	StreamStderr = logline.Stderr
	// MaxLogLineBytes is the longest text of one record; a longer line is
	// written as several (P ... P F).
	MaxLogLineBytes = logline.MaxBytes
)

// LogLine is one line of an instance's output.
type LogLine struct {
	Time   time.Time // zero: not known
	Stream string    // StreamStdout, StreamStderr or "" (not known)
	Text   string
}

// AppendLogRecord appends one record (with its newline) to dst: text must
// hold no newline and at most MaxLogLineBytes (the writer splits longer
// lines, partial for all parts but the last). The format is package
// logline's.
func AppendLogRecord(dst []byte, t time.Time, stream string, partial bool, text []byte) []byte {
	return logline.Append(dst, t, stream, partial, text)
}

// parseRecord reads one record; ok is false for a line in another form.
func parseRecord(s string) (l LogLine, partial, ok bool) {
	ts, rest, found := strings.Cut(s, " ")
	if !found || len(ts) < len("2006-01-02T15:04:05Z") || ts[4] != '-' {
		return LogLine{}, false, false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return LogLine{}, false, false
	}
	stream, rest, found := strings.Cut(rest, " ")
	if !found || stream != StreamStdout && stream != StreamStderr {
		return LogLine{}, false, false
	}
	tag, text, found := strings.Cut(rest, " ")
	if !found && rest != "F" && rest != "P" || tag != "F" && tag != "P" {
		return LogLine{}, false, false
	}
	return LogLine{Time: t, Stream: stream, Text: text}, tag == "P", true
}

// ParseLog splits a log (records, or plain lines) into its lines, joining
// the parts of a long line; a trailing partial line is kept as it is.
func ParseLog(s string) []LogLine {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	raw := strings.Split(s, "\n")
	out := make([]LogLine, 0, len(raw))
	open := map[string]int{} // stream → index in out of its unfinished line
	for _, r := range raw {
		l, partial, ok := parseRecord(r)
		if !ok {
			out = append(out, LogLine{Text: r})
			continue
		}
		if i, cont := open[l.Stream]; cont {
			out[i].Text += l.Text
		} else {
			out = append(out, l)
		}
		if partial {
			if _, cont := open[l.Stream]; !cont {
				open[l.Stream] = len(out) - 1
			}
		} else {
			delete(open, l.Stream)
		}
	}
	return out
}
