package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestWatch: Watch parses the stream, resumes after the last batch when
// the stream ends, stops with fn's error, and returns an answer that
// reconnecting cannot cure (429).
func TestWatch(t *testing.T) {
	var mu sync.Mutex
	var afters []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		mu.Lock()
		afters = append(afters, r.URL.Query().Get("after"))
		n := len(afters)
		mu.Unlock()
		if n == 3 {
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":"too many open event streams"}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 3000\nevent: hello\ndata: {\"epoch\":\"e1\"}\n\n: ping\n\n")
		fmt.Fprintf(w, "id: e1.%d\nevent: change\ndata: {\"seq\":%d,\"index\":%d,\"changes\":[{\"kind\":\"instance\",\"id\":\"s.%d\",\"usage\":true}]}\n\n", n, n, 10*n, n)
		// The stream ends: Watch reconnects after e1.n.
	}))
	defer srv.Close()
	c := NewClient(Config{Address: srv.URL}).WithToken("tok")

	var got []ChangeBatch
	err := c.Watch(context.Background(), "", func(b ChangeBatch) error {
		got = append(got, b)
		return nil
	})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusTooManyRequests {
		t.Fatalf("Watch = %v, want the 429", err)
	}
	if len(got) != 2 || got[0].ID != "e1.1" || got[1].ID != "e1.2" || got[1].Index != 20 ||
		len(got[1].Changes) != 1 || got[1].Changes[0] != (Change{Kind: ChangeInstance, ID: "s.2", Usage: true}) {
		t.Fatalf("batches %+v", got)
	}
	if fmt.Sprint(afters) != "[ e1.1 e1.2]" {
		t.Errorf("resumed after %q, want \"\", e1.1, e1.2", afters)
	}

	stop := errors.New("enough")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mu.Lock()
	afters = nil
	mu.Unlock()
	if err := c.Watch(ctx, "", func(ChangeBatch) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Watch = %v, want fn's error", err)
	}
}
