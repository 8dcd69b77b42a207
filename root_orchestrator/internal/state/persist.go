package state

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	mFlushes = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "thicket_root", Name: "state_flushes_total",
		Help: "Batches of state changes written to the durable store, by result.",
	}, []string{"result"})
	mIgnored = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "thicket_root", Name: "statuses_ignored_total",
		Help: "Instance statuses a cluster reported for instances the root did not assign to it (a copy it is stopping, or a cluster that lies): never applied.",
	})
	mFlushed = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "thicket_root", Name: "state_objects_written_total",
		Help: "Objects written to (or deleted from) the durable store.",
	})
	mBehind = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "thicket_root", Name: "state_unwritten_objects",
		Help: "Changed objects not yet in the durable store.",
	})
)

// Ticket names a write for Durable. The zero ticket is always durable.
type Ticket struct{ seq uint64 }

// persister queues changes and writes them to the backend in batches: each
// object's latest version once per batch, however often it changed.
type persister struct {
	mu      sync.Mutex
	pending map[changeKey]queued
	order   []changeKey // first-queued order, so a batch keeps dependencies roughly in order
	seq     uint64      // of the last queued write
	durable uint64      // every write up to this seq is in the backend
	wake    chan struct{}
	done    chan struct{} // closed and replaced when durable grows
	err     error         // of the last failed attempt, while failing
	// lastWaited: when the last waited-for change was queued (see
	// lazyQuiet); quiet is lazyQuiet (tests change it).
	lastWaited time.Time
	quiet      time.Duration
}

type queued struct {
	Change
	seq uint64 // of the oldest write whose change this version carries
	// lazy: only background writes (cluster reports, scheduling verdicts)
	// changed it; nobody waits for it, so waited-for writes go first.
	lazy bool
	at   time.Time // when it was first queued
}

// lazyWithin is how long a background change waits before it is written:
// the changes of an instance's first second (assigned, creating, running)
// become one write.
const lazyWithin = time.Second

// lazyQuiet: due background changes wait until no waited-for change was
// queued for this long, unless they are overdue (3 × lazyWithin). A burst
// of requests, each waiting for its write, then has the store to itself:
// a batch of background changes (lazyBatch of them, tens of milliseconds
// in the embedded engine) written between two of its writes held up every
// request that came meanwhile. Under a burst longer than the overdue
// bound they are written all the same, so they never pile up.
const lazyQuiet = 50 * time.Millisecond

type changeKey struct {
	kind Kind
	id   string
}

func (p *persister) init() {
	p.pending = map[changeKey]queued{}
	p.quiet = lazyQuiet
	p.wake = make(chan struct{}, 1)
	p.done = make(chan struct{})
}

// queue takes a committed write's changes and returns its ticket.
func (p *persister) queue(cs []Change) Ticket {
	if len(cs) == 0 {
		return Ticket{}
	}
	p.mu.Lock()
	p.seq++
	t := Ticket{p.seq}
	now := time.Now()
	for _, c := range cs {
		lazy := c.lazy
		if !lazy {
			p.lastWaited = now
		}
		k := changeKey{c.Kind, c.ID}
		q, ok := p.pending[k]
		if !ok {
			p.order = append(p.order, k)
			q.seq, q.lazy, q.at = p.seq, lazy, now
		} else if q.lazy && !lazy {
			q.seq, q.lazy = p.seq, false
		}
		// The newest version, but the seq of the oldest waited-for write it
		// carries: that write is not stored until this version is.
		q.Change = c
		p.pending[k] = q
	}
	mBehind.Set(float64(len(p.pending)))
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return t
}

// Durable waits until the write of ticket t is in the durable store, or ctx
// ends (then it says why the store is behind).
func (s *Store) Durable(ctx context.Context, t Ticket) error {
	p := &s.p
	for {
		p.mu.Lock()
		durable, done := p.durable, p.done
		p.mu.Unlock()
		if durable >= t.seq {
			return nil
		}
		select {
		case <-done:
		case <-ctx.Done():
			p.mu.Lock()
			lastErr := p.err
			p.mu.Unlock()
			if lastErr != nil {
				return fmt.Errorf("the change is not stored yet (it will be): %w", lastErr)
			}
			return fmt.Errorf("the change is not stored yet (it will be): %w", ctx.Err())
		}
	}
}

// maxBatch bounds the objects of one backend write, so that one batch does
// not hold the store's connection for long; lazyBatch those of a batch that
// holds background changes.
const (
	maxBatch  = 500
	lazyBatch = 64
)

// Run writes queued changes behind until ctx ends, then writes what is
// left (for up to 10 s).
func (s *Store) Run(ctx context.Context) {
	p := &s.p
	backoff := 50 * time.Millisecond
	var due <-chan time.Time // when the oldest background change is due
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			for {
				if n, _ := s.flush(final, true); n <= 0 || final.Err() != nil {
					break
				}
			}
			cancel()
			return
		case <-p.wake:
		case <-due:
		}
		// Writes that come while a batch is written gather into the next.
		for {
			n, next := s.flush(ctx, false)
			if n < 0 {
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
				if ctx.Err() != nil {
					break
				}
				continue
			}
			backoff = 50 * time.Millisecond
			if n == 0 {
				due = nil
				if next > 0 {
					due = time.After(next)
				}
				break
			}
		}
	}
}

// flush writes one batch: the changes writes wait for, else background
// changes that waited lazyWithin (all of them when all is set), in batches
// of lazyBatch. It returns how many changes are still to write now, or -1
// when the write failed (the batch is queued again), and how long until the
// next background change is due (0: none waits).
func (s *Store) flush(ctx context.Context, all bool) (int, time.Duration) {
	p := &s.p
	p.mu.Lock()
	now := time.Now()
	// Background changes wait for waited-for ones, but not for ever.
	urgent, overdue := false, false
	for _, q := range p.pending {
		if !q.lazy {
			urgent = true
		} else if now.Sub(q.at) >= 3*lazyWithin {
			overdue = true
		}
	}
	if overdue {
		urgent = false
	}
	if n, next := p.writable(all, now); n == 0 {
		p.mu.Unlock()
		return 0, next
	}
	quiet := all || overdue || now.Sub(p.lastWaited) >= p.quiet
	// A batch of background changes stays small: a waited-for write that
	// comes meanwhile waits for it.
	limit := maxBatch
	if !urgent {
		limit = lazyBatch
	}
	var keys, rest []changeKey
	for _, k := range p.order {
		q := p.pending[k]
		take := !q.lazy || !urgent && quiet && (all || now.Sub(q.at) >= lazyWithin)
		if len(keys) < limit && take {
			keys = append(keys, k)
		} else {
			rest = append(rest, k)
		}
	}
	keys, rest = p.holdBack(keys, rest)
	n := len(keys)
	if n == 0 { // due background changes in a burst (see writable)
		next := p.quiet - now.Sub(p.lastWaited)
		p.mu.Unlock()
		return 0, max(next, time.Millisecond)
	}
	batch := make([]queued, n)
	changes := make([]Change, n)
	for i, k := range keys {
		batch[i] = p.pending[k]
		changes[i] = batch[i].Change
		delete(p.pending, k)
	}
	p.order = rest
	p.mu.Unlock()

	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := s.be.Write(wctx, changes)
	cancel()

	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		mFlushes.WithLabelValues("error").Inc()
		if p.err == nil {
			s.log.Error("writing state to the store failed; retrying (the root keeps serving from memory)", "err", err, "objects", n)
		}
		p.err = err
		// Queue again what was not changed meanwhile, ahead of newer work.
		var again []changeKey
		for i, k := range keys {
			if q, newer := p.pending[k]; newer {
				// The newer version carries this write too.
				q.seq = min(q.seq, batch[i].seq)
				p.pending[k] = q
			} else {
				p.pending[k] = batch[i]
				again = append(again, k)
			}
		}
		p.order = append(again, p.order...)
		mBehind.Set(float64(len(p.pending)))
		return -1, 0
	}
	mFlushes.WithLabelValues("ok").Inc()
	mFlushed.Add(float64(n))
	if p.err != nil {
		s.log.Info("state written to the store again")
		p.err = nil
	}
	// Every waited-for write older than the oldest such version still
	// queued is stored.
	durable := p.seq
	for _, q := range p.pending {
		if !q.lazy {
			durable = min(durable, q.seq-1)
		}
	}
	if durable > p.durable {
		p.durable = durable
		close(p.done)
		p.done = make(chan struct{})
	}
	mBehind.Set(float64(len(p.pending)))
	return p.writable(all, time.Now())
}

// writable counts the changes to write now and says how long until the
// next background change is due (0: none waits). Due background changes
// wait for the quiet after a burst of waited-for ones (lazyQuiet) unless
// they are overdue. Caller holds mu.
func (p *persister) writable(all bool, now time.Time) (int, time.Duration) {
	n := 0
	var next time.Duration
	burst := p.quiet - now.Sub(p.lastWaited) // > 0: within a burst
	for _, q := range p.pending {
		wait := lazyWithin - now.Sub(q.at)
		if q.lazy && wait <= 0 && burst > 0 && now.Sub(q.at) < 3*lazyWithin {
			wait = burst
		}
		switch {
		case !q.lazy || all || wait <= 0:
			n++
		case next == 0 || wait < next:
			next = wait
		}
	}
	return n, next
}
