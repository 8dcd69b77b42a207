// Package logtail finds the new lines of a log that is only ever read as
// its last lines (the API answers the tail a node last reported): what
// `thicket logs -f` prints on each poll.
package logtail

import (
	"time"

	"github.com/thicket-edge/thicket/api"
)

// Keys are the lines as New compares them: text with time and stream, so
// that a line repeated later is not taken for the earlier one.
func Keys(lines []api.LogLine) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Time.Format(time.RFC3339Nano) + " " + l.Stream + " " + l.Text
	}
	return out
}

// New returns the lines of cur that were not in prev: cur's lines after the
// longest run of lines that ends prev and starts cur. A window that moved
// past everything prev held gives all of cur.
func New(prev, cur []string) []string {
	for k := min(len(prev), len(cur)); k > 0; k-- {
		if equal(prev[len(prev)-k:], cur[:k]) {
			return cur[k:]
		}
	}
	return cur
}

func equal(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
