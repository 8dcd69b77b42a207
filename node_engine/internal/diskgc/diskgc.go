// Package diskgc keeps what the node's runtimes cache on disk (downloaded
// wasm modules and their compiled code, unikernel images, container
// images) under a budget: when the items of every store together take more
// than the budget, the least recently used items that no instance uses are
// removed until they fit. An item may also ask to be kept until it has been
// unused for a while (container images: thicket-node --image-gc-after).
//
// The choice is the pure function Plan; each runtime is a Store.
package diskgc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"
)

// Defaults of the node's flags.
const (
	DefaultBudget       = 2 << 30
	DefaultImageGCAfter = time.Hour
	// DefaultEvery is how often Run collects.
	DefaultEvery = time.Minute
)

// ErrInUse is returned (wrapped) by a Store's Remove when the item came
// into use since it was listed: it is kept.
var ErrInUse = errors.New("in use")

// Item is one thing a store holds on disk.
type Item struct {
	// ID names the item in its store.
	ID string
	// Bytes is what it takes on disk.
	Bytes int64
	// LastUsed is when an instance last used it (or when it was made).
	LastUsed time.Time
	// InUse: an instance holds it; it is never removed.
	InUse bool
	// MinIdle keeps it until it has been unused this long.
	MinIdle time.Duration
}

// Store is what holds items: a runtime's cache or image store.
type Store interface {
	// Name names the store in logs and results ("wasm", "containerd").
	Name() string
	// Items lists what it holds.
	Items(ctx context.Context) ([]Item, error)
	// Remove removes an item unless it came into use (ErrInUse).
	Remove(ctx context.Context, id string) error
}

// Candidate is an item of a named store.
type Candidate struct {
	Store string
	Item
}

// Plan returns the items to remove so that the total of items fits budget:
// the least recently used first, never one in use or unused for less than
// its MinIdle; and the total before. If even removing every candidate
// does not reach the budget, every candidate is returned.
func Plan(items []Candidate, budget int64, now time.Time) (remove []Candidate, total int64) {
	for _, it := range items {
		total += it.Bytes
	}
	if total <= budget {
		return nil, total
	}
	var cands []Candidate
	for _, it := range items {
		if it.InUse || now.Sub(it.LastUsed) < it.MinIdle {
			continue
		}
		cands = append(cands, it)
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].LastUsed.Before(cands[j].LastUsed) })
	over := total - budget
	for _, c := range cands {
		if over <= 0 {
			break
		}
		remove = append(remove, c)
		over -= c.Bytes
	}
	return remove, total
}

// Collector collects the stores' items under Budget.
type Collector struct {
	Budget int64
	Stores []Store
	Log    *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Result is what one collection did.
type Result struct {
	// Total is the bytes of every item before; Freed what was removed.
	Total, Freed int64
	Removed      []Candidate
}

// Collect lists every store's items and removes what Plan says. A store
// that cannot list or remove is logged and skipped; the error joins them.
func (c *Collector) Collect(ctx context.Context) (Result, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	log := c.Log
	if log == nil {
		log = slog.Default()
	}
	var all []Candidate
	byName := map[string]Store{}
	var errs []error
	for _, s := range c.Stores {
		items, err := s.Items(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: list: %w", s.Name(), err))
			continue
		}
		byName[s.Name()] = s
		for _, it := range items {
			all = append(all, Candidate{Store: s.Name(), Item: it})
		}
	}
	remove, total := Plan(all, c.Budget, now())
	res := Result{Total: total}
	for _, it := range remove {
		err := byName[it.Store].Remove(ctx, it.ID)
		switch {
		case errors.Is(err, ErrInUse):
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: remove %s: %w", it.Store, it.ID, err))
			continue
		}
		res.Freed += it.Bytes
		res.Removed = append(res.Removed, it)
		log.Info("removed an unused cached item over the disk budget", "store", it.Store, "item", it.ID, "bytes", it.Bytes,
			"last_used", it.LastUsed.UTC().Format(time.RFC3339))
	}
	return res, errors.Join(errs...)
}

// Run collects every interval until ctx ends. An error is logged when it
// differs from the previous one (a store that cannot list, e.g. no
// containerd here, is not logged every minute).
func (c *Collector) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultEvery
	}
	log := c.Log
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var last string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := c.Collect(ctx)
		if ctx.Err() != nil {
			return
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != last && err != nil {
			log.Warn("disk budget: collect", "err", err)
		}
		last = msg
	}
}
