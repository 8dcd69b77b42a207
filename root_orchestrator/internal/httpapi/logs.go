package httpapi

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// defaultLogTail is how many lines GET .../logs answers without ?tail.
const defaultLogTail = 100

// logQuery is what GET .../logs asks for: the last tail lines written at
// or after since (zero: any time).
type logQuery struct {
	tail  int
	since time.Time
}

// parseLogQuery reads ?tail=N (or the older ?lines=N) and ?since= (a
// duration before now, "10m", or an RFC 3339 time).
func parseLogQuery(v url.Values, now time.Time) (logQuery, error) {
	q := logQuery{tail: defaultLogTail}
	for _, name := range []string{"lines", "tail"} {
		if s := v.Get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return q, errBadRequest(name+" must be a positive integer", name)
			}
			q.tail = n
		}
	}
	if s := v.Get("since"); s != "" {
		if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			q.since = now.Add(-d)
		} else if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			q.since = t
		} else {
			return q, errBadRequest("since must be a duration before now (10m, 1h30m) or an RFC 3339 time (2026-01-02T15:04:05Z)", "since")
		}
	}
	return q, nil
}

// pick is the lines q selects: with since, those with a time at or after
// it (a line without a time is left out); then the last tail of them.
func (q logQuery) pick(lines []wire.LogLine) []wire.LogLine {
	if !q.since.IsZero() {
		kept := lines[:0]
		for _, l := range lines {
			if !l.Time.IsZero() && !l.Time.Before(q.since) {
				kept = append(kept, l)
			}
		}
		lines = kept
	}
	return lines[max(0, len(lines)-q.tail):]
}

func restLogLines(lines []wire.LogLine) []api.LogLine {
	out := make([]api.LogLine, len(lines))
	for i, l := range lines {
		out[i] = api.LogLine{Time: l.Time, Stream: l.Stream, Text: l.Text}
	}
	return out
}

// logText is the text of a reported log, one line per line, without the
// records' times and streams (the instance document's logs field).
func logText(s string) string {
	if s == "" {
		return ""
	}
	return joinText(wire.ParseLog(s))
}

// joinText is the lines' text, each ended by a newline.
func joinText(lines []wire.LogLine) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return b.String()
}
