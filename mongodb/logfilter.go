package mongodb

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
)

// levelFilter passes records of at least min, and none once off is set.
//
// The attributes and groups a logger adds (With, WithGroup) are applied to
// the handler only when a record passes: the embedded engine derives a
// logger with attributes for every SQL statement it runs, and a text or
// JSON handler formats them at once, which cost a few per cent of a busy
// store's CPU for records that are almost never written (only warnings
// pass).
type levelFilter struct {
	slog.Handler
	min slog.Level
	off *atomic.Bool
	// with are the attributes and groups added, oldest first.
	with []withOp
}

// withOp is one WithAttrs (attrs) or WithGroup (group) call.
type withOp struct {
	attrs []slog.Attr
	group string
}

func (h *levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && !h.off.Load() && h.Handler.Enabled(ctx, l)
}

// Handle applies the pending attributes and groups, then the record.
func (h *levelFilter) Handle(ctx context.Context, r slog.Record) error {
	out := h.Handler
	for _, op := range h.with {
		if op.attrs != nil {
			out = out.WithAttrs(op.attrs)
		} else {
			out = out.WithGroup(op.group)
		}
	}
	return out.Handle(ctx, r)
}

func (h *levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	if len(a) == 0 {
		return h
	}
	return h.plus(withOp{attrs: slices.Clone(a)})
}

func (h *levelFilter) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.plus(withOp{group: name})
}

// plus is h with op added; h itself is not changed (full slice
// expression: no two derived handlers share a backing array they append
// to).
func (h *levelFilter) plus(op withOp) *levelFilter {
	with := append(h.with[:len(h.with):len(h.with)], op)
	return &levelFilter{Handler: h.Handler, min: h.min, off: h.off, with: with}
}
