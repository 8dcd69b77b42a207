package changefeed

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// recorder collects what a stream sends.
type recorder struct {
	mu      sync.Mutex
	batches []Batch
	pings   int
	got     chan struct{}
}

func newRecorder() *recorder { return &recorder{got: make(chan struct{}, 100)} }

func (r *recorder) send(b Batch) error {
	r.mu.Lock()
	r.batches = append(r.batches, b)
	r.mu.Unlock()
	r.got <- struct{}{}
	return nil
}

func (r *recorder) ping() error {
	r.mu.Lock()
	r.pings++
	r.mu.Unlock()
	r.got <- struct{}{}
	return nil
}

func (r *recorder) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.got:
	case <-time.After(5 * time.Second):
		t.Fatal("nothing sent in 5 s")
	}
}

func (r *recorder) snapshot() ([]Batch, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Batch(nil), r.batches...), r.pings
}

func run(t *testing.T, st *Stream) (*recorder, context.CancelFunc) {
	t.Helper()
	r := newRecorder()
	st.Send, st.Ping = r.send, r.ping
	if st.Heartbeat == 0 {
		st.Heartbeat = time.Hour
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r, cancel
}

func ids(cs []Change) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Kind+":"+c.ID)
	}
	return out
}

func TestStreamCoalescesBursts(t *testing.T) {
	f := New(64)
	r, _ := run(t, &Stream{Feed: f, Every: 300 * time.Millisecond})
	time.Sleep(20 * time.Millisecond) // the stream started at seq 0
	f.Publish(1, ch(KindApplication, "a"))
	r.wait(t)
	// A burst right after the first batch: one batch, after the interval.
	start := time.Now()
	for i := range 10 {
		f.Publish(uint64(2+i), ch(KindInstance, "i"), ch(KindService, "s"))
	}
	r.wait(t)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("second batch after %v, want the coalescing interval", d)
	}
	time.Sleep(400 * time.Millisecond)
	bs, _ := r.snapshot()
	if len(bs) != 2 {
		t.Fatalf("%d batches, want 2: %+v", len(bs), bs)
	}
	if got := ids(bs[1].Changes); len(got) != 2 || got[0] != "instance:i" || got[1] != "service:s" || bs[1].Seq != 11 || bs[1].Index != 11 {
		t.Fatalf("second batch %+v, want instance:i and service:s up to seq 11, index 11", bs[1])
	}
}

func TestStreamFilters(t *testing.T) {
	f := New(64)
	mine := func(c Change) bool { return c.Owner == "alice" || c.Kind == KindCluster }
	r, _ := run(t, &Stream{Feed: f, Visible: mine})
	time.Sleep(20 * time.Millisecond)
	f.Publish(1, Change{Kind: KindApplication, ID: "b1", Owner: "bob"})
	f.Publish(2, Change{Kind: KindApplication, ID: "a1", Owner: "alice"}, Change{Kind: KindService, ID: "b2", Owner: "bob"})
	r.wait(t)
	time.Sleep(50 * time.Millisecond)
	bs, _ := r.snapshot()
	if len(bs) != 1 || len(bs[0].Changes) != 1 || bs[0].Changes[0].ID != "a1" || bs[0].Seq != 2 {
		t.Fatalf("batches %+v, want only alice's a1 at seq 2", bs)
	}
}

func TestStreamResumes(t *testing.T) {
	f := New(16)
	for i := range 3 {
		f.Publish(uint64(i+1), ch(KindService, string(rune('a'+i))))
	}
	tests := []struct {
		name      string
		epoch     string
		after     uint64
		reset     bool
		wantIDs   []string
		wantFirst uint64
	}{
		{"missed changes", f.Epoch(), 1, false, []string{"service:b", "service:c"}, 3},
		{"another epoch", "0123", 1, true, []string{}, 3},
		{"ahead of the feed", f.Epoch(), 7, true, []string{}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, cancel := run(t, &Stream{Feed: f, Epoch: tt.epoch, After: tt.after})
			r.wait(t)
			cancel()
			bs, _ := r.snapshot()
			if bs[0].Reset != tt.reset || bs[0].Seq != tt.wantFirst || len(ids(bs[0].Changes)) != len(tt.wantIDs) {
				t.Fatalf("first batch %+v, want reset %v ids %v seq %d", bs[0], tt.reset, tt.wantIDs, tt.wantFirst)
			}
			for i, id := range ids(bs[0].Changes) {
				if id != tt.wantIDs[i] {
					t.Fatalf("first batch %v, want %v", ids(bs[0].Changes), tt.wantIDs)
				}
			}
		})
	}
}

func TestStreamResetsWhenTooMany(t *testing.T) {
	f := New(4 * MaxChanges)
	r, _ := run(t, &Stream{Feed: f})
	time.Sleep(20 * time.Millisecond)
	var cs []Change
	for i := range MaxChanges + 1 {
		cs = append(cs, Change{Kind: KindInstance, ID: string(rune(0x4e00 + i))})
	}
	f.Publish(1, cs...)
	r.wait(t)
	bs, _ := r.snapshot()
	if !bs[0].Reset || len(bs[0].Changes) != 0 {
		t.Fatalf("batch of %d changes: %+v, want a reset", len(cs), bs[0])
	}
}

func TestBounded(t *testing.T) {
	many := func(kind string, n int, usage bool) []Change {
		var out []Change
		for i := range n {
			out = append(out, Change{Kind: kind, ID: kind + string(rune(0x4e00+i)), Usage: usage})
		}
		return out
	}
	tests := []struct {
		name string
		in   []Change
		want int // changes; -1: nil (reset)
		any  int // of them AnyID
	}{
		{"within the bound", many(KindNode, MaxChanges, true), MaxChanges, 0},
		{"usage over it", append(many(KindNode, 300, true), append(many(KindInstance, 200, true), ch(KindService, "s"))...), 3, 2},
		{"real changes over it", many(KindInstance, MaxChanges+1, false), -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bounded(tt.in)
			if tt.want < 0 {
				if got != nil {
					t.Fatalf("got %d changes, want nil", len(got))
				}
				return
			}
			n := 0
			for _, c := range got {
				if c.ID == AnyID {
					n++
				}
			}
			if len(got) != tt.want || n != tt.any {
				t.Fatalf("got %d changes (%d of any id), want %d (%d)", len(got), n, tt.want, tt.any)
			}
		})
	}
}

func TestStreamHeartbeat(t *testing.T) {
	f := New(16)
	r, _ := run(t, &Stream{Feed: f, Heartbeat: 50 * time.Millisecond})
	r.wait(t)
	r.wait(t)
	if _, pings := r.snapshot(); pings < 2 {
		t.Fatalf("%d pings, want 2", pings)
	}
}

func TestStreamStopsOnSendError(t *testing.T) {
	f := New(16)
	boom := errors.New("gone")
	st := &Stream{Feed: f, Heartbeat: time.Hour, Send: func(Batch) error { return boom }, Ping: func() error { return nil }}
	done := make(chan error, 1)
	go func() { done <- st.Run(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	f.Publish(1, ch(KindNode, "n"))
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Fatalf("Run = %v, want %v", err, boom)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop when Send failed")
	}
}
