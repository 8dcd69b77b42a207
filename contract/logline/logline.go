// Package logline is the record format of instance logs (Kubernetes' CRI
// log format), apart from package wire so that the per-instance log writer
// (node_engine/logwriter) links the standard library and nothing else:
//
//	<time, RFC 3339 with nanoseconds, UTC> <stdout|stderr> <F|P> <text>
//
// F ends a line, P is a part of a line longer than MaxBytes that the next
// record continues. wire parses these records (wire.ParseLog).
package logline

import "time"

// The streams of a record.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// MaxBytes is the longest text of one record; a longer line is written as
// several (P ... P F).
const MaxBytes = 16 << 10

// Append appends one record (with its newline) to dst: text must hold no
// newline and at most MaxBytes (the writer splits longer lines, partial
// for all parts but the last).
func Append(dst []byte, t time.Time, stream string, partial bool, text []byte) []byte {
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, ' ')
	dst = append(dst, stream...)
	if partial {
		dst = append(dst, " P "...)
	} else {
		dst = append(dst, " F "...)
	}
	dst = append(dst, text...)
	return append(dst, '\n')
}
