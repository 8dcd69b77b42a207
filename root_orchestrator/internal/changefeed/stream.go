package changefeed

import (
	"context"
	"time"
)

// MaxChanges bounds the changes of one batch: a larger burst is sent as a
// reset (refresh everything), which is cheaper to send and to act on.
const MaxChanges = 256

// Batch is one message of a stream: the changes a reader may see since its
// previous batch, coalesced.
type Batch struct {
	// Seq is the feed's sequence number this batch reaches (the stream's
	// event id, with the epoch: resume after it).
	Seq uint64 `json:"seq"`
	// Index is the state index of the last change.
	Index uint64 `json:"index"`
	// Reset: changes were missed (the ring moved on, another epoch, or too
	// many at once); the reader should refresh everything it shows.
	Reset   bool     `json:"reset,omitempty"`
	Changes []Change `json:"changes"`
}

// Stream follows a feed for one reader.
type Stream struct {
	Feed *Feed
	// Epoch and After are where the reader resumes (the id of the last batch
	// it got); After 0: from now. An After of another epoch, or one the ring
	// no longer holds, starts with a reset.
	Epoch string
	After uint64
	// Visible says whether the reader may see a change.
	Visible func(Change) bool
	// Every is the least time between two batches (bursts coalesce).
	Every time.Duration
	// Heartbeat is the longest silence: Ping is called after it.
	Heartbeat time.Duration
	Send      func(Batch) error
	Ping      func() error
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// start is where a stream begins: the sequence number it follows from, and
// a reset batch to send first when the reader cannot resume where it asked.
func (st *Stream) start() (seq uint64, resume *Batch) {
	cur, index, _ := st.Feed.Current()
	switch {
	case st.After == 0 && st.Epoch == "":
		return cur, nil
	case st.Epoch != st.Feed.Epoch() || st.After > cur:
		return cur, &Batch{Seq: cur, Index: index, Reset: true, Changes: []Change{}}
	}
	return st.After, nil
}

// Run sends batches until ctx ends or Send or Ping fails.
func (st *Stream) Run(ctx context.Context) error {
	now := st.Now
	if now == nil {
		now = time.Now
	}
	last, first := st.start()
	if first != nil {
		if err := st.Send(*first); err != nil {
			return err
		}
	}
	var sent time.Time
	hb := time.NewTimer(st.Heartbeat)
	defer hb.Stop()
	var hold *time.Timer
	defer func() {
		if hold != nil {
			hold.Stop()
		}
	}()
	for {
		cur, _, next := st.Feed.Current()
		if cur > last {
			if wait := st.Every - now().Sub(sent); !sent.IsZero() && wait > 0 {
				// Coalesce: wait out the interval, then send all at once.
				if hold == nil {
					hold = time.NewTimer(wait)
				} else {
					hold.Reset(wait)
				}
				select {
				case <-hold.C:
					continue
				case <-ctx.Done():
					return nil
				}
			}
			b := st.batch(last)
			last = b.Seq
			if b.Reset || len(b.Changes) > 0 {
				if err := st.Send(b); err != nil {
					return err
				}
				sent = now()
				hb.Reset(st.Heartbeat)
			}
			continue
		}
		select {
		case <-next:
		case <-hb.C:
			if err := st.Ping(); err != nil {
				return err
			}
			hb.Reset(st.Heartbeat)
		case <-ctx.Done():
			return nil
		}
	}
}

// batch is what the reader may see after sequence number after.
func (st *Stream) batch(after uint64) Batch {
	cs, seq, index, complete := st.Feed.Since(after)
	b := Batch{Seq: seq, Index: index, Changes: []Change{}}
	if !complete {
		b.Reset = true
		return b
	}
	b.Changes = bounded(Coalesce(cs, st.Visible))
	if b.Changes == nil {
		b.Reset, b.Changes = true, []Change{}
	}
	return b
}

// AnyID is the id of a change that stands for many objects of its kind.
const AnyID = "*"

// bounded keeps a batch within MaxChanges: usage changes beyond the bound
// become one change per kind (ID AnyID); nil when the real changes alone
// are too many (the reader should refresh everything).
func bounded(cs []Change) []Change {
	if len(cs) <= MaxChanges {
		return cs
	}
	var out []Change
	usage := map[string]bool{}
	for _, c := range cs {
		if !c.Usage {
			out = append(out, c)
		} else if !usage[c.Kind] {
			usage[c.Kind] = true
			out = append(out, Change{Kind: c.Kind, ID: AnyID, Usage: true})
		}
	}
	if len(out) > MaxChanges {
		return nil
	}
	return out
}

// Coalesce keeps the visible changes, each object once (a real change wins
// over a usage one), in the order they first happened.
func Coalesce(cs []Change, visible func(Change) bool) []Change {
	out := make([]Change, 0, len(cs))
	for _, c := range cs {
		if visible == nil || visible(c) {
			out = append(out, c)
		}
	}
	return dedupe(out)
}
