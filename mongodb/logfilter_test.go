package mongodb

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// TestLevelFilter: records below the level, and every record once off,
// are dropped; the attributes and groups added before are written as the
// handler itself would write them, in their order, and a derived logger
// does not change the one it came from.
func TestLevelFilter(t *testing.T) {
	textOpts := &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.Attr{}
		}
		return a
	}}
	direct := func(build func(*slog.Logger) *slog.Logger) string {
		var b bytes.Buffer
		build(slog.New(slog.NewTextHandler(&b, textOpts))).Warn("w", "k", 1)
		return b.String()
	}
	tests := []struct {
		name  string
		build func(*slog.Logger) *slog.Logger
	}{
		{"none", func(l *slog.Logger) *slog.Logger { return l }},
		{"attrs", func(l *slog.Logger) *slog.Logger { return l.With("component", "ferretdb").With("conn", 7) }},
		{"group", func(l *slog.Logger) *slog.Logger { return l.With("a", 1).WithGroup("g").With("b", 2) }},
		{"empty", func(l *slog.Logger) *slog.Logger { return l.With().WithGroup("") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			var off atomic.Bool
			base := slog.New(&levelFilter{Handler: slog.NewTextHandler(&b, textOpts), min: slog.LevelWarn, off: &off})
			l := tc.build(base)
			l.Info("dropped", "k", 1)
			l.Warn("w", "k", 1)
			if got, want := b.String(), direct(tc.build); got != want {
				t.Errorf("wrote %q, want %q", got, want)
			}
			b.Reset()
			base.Warn("w", "k", 1) // the parent has none of the child's attributes
			if got, want := b.String(), direct(func(l *slog.Logger) *slog.Logger { return l }); got != want {
				t.Errorf("the parent wrote %q, want %q", got, want)
			}
			b.Reset()
			off.Store(true)
			l.Error("after close")
			if b.Len() != 0 {
				t.Errorf("wrote %q after off", b.String())
			}
		})
	}
	// Two loggers derived from one do not see each other's attributes.
	var b bytes.Buffer
	var off atomic.Bool
	parent := slog.New(&levelFilter{Handler: slog.NewTextHandler(&b, textOpts), min: slog.LevelWarn, off: &off}).With("p", 0)
	x, y := parent.With("x", 1), parent.With("y", 2)
	x.Warn("m")
	y.Warn("m")
	if got := b.String(); strings.Count(got, "x=1") != 1 || strings.Count(got, "y=2") != 1 || strings.Contains(strings.Split(got, "\n")[1], "x=1") {
		t.Errorf("siblings mixed: %q", got)
	}
}
