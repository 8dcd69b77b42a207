package jobsapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// fake is a Source in memory.
type fake struct {
	mu      sync.Mutex
	docs    map[netip.Addr]Document
	changed chan struct{}
}

func newFake() *fake {
	return &fake{docs: map[netip.Addr]Document{}, changed: make(chan struct{})}
}

func (f *fake) Jobs(a netip.Addr) (Document, <-chan struct{}, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.docs[a]
	return d, f.changed, ok
}

func (f *fake) set(a string, d Document) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.docs[netip.MustParseAddr(a)] = d
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fake) drop(a string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.docs, netip.MustParseAddr(a))
	close(f.changed)
	f.changed = make(chan struct{})
}

// get asks h as the client at from (ip:port) and decodes the answer.
func get(t *testing.T, h http.Handler, from, target string) (int, Document, time.Duration) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.RemoteAddr = from
	w := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(w, r)
	var d Document
	if w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
			t.Fatalf("%s: %v: %s", target, err, w.Body)
		}
	}
	return w.Code, d, time.Since(start)
}

func TestAnswersOnlyTheCallersJobs(t *testing.T) {
	src := newFake()
	src.set("10.64.3.2", Document{Version: 4, Jobs: []string{"cam-1", "cam-3"}})
	src.set("10.64.3.3", Document{Version: 4, Jobs: []string{"cam-2"}})
	h := New(src)
	for _, tc := range []struct {
		name, from, target string
		code               int
		jobs               []string
	}{
		{"first instance", "10.64.3.2:40000", "/v1/jobs", 200, []string{"cam-1", "cam-3"}},
		{"second instance", "10.64.3.3:40000", "/v1/jobs", 200, []string{"cam-2"}},
		{"newer than after: at once", "10.64.3.2:40000", "/v1/jobs?after=3", 200, []string{"cam-1", "cam-3"}},
		{"IPv4 in IPv6", "[::ffff:10.64.3.3]:40000", "/v1/jobs", 200, []string{"cam-2"}},
		{"an address without jobs", "10.64.3.9:40000", "/v1/jobs", 404, nil},
		{"another node's instance", "10.64.2.2:40000", "/v1/jobs", 404, nil},
		{"bad after", "10.64.3.2:40000", "/v1/jobs?after=x", 400, nil},
		{"negative after", "10.64.3.2:40000", "/v1/jobs?after=-2", 400, nil},
		{"bad wait", "10.64.3.2:40000", "/v1/jobs?after=4&wait=1000", 400, nil},
		{"other path", "10.64.3.2:40000", "/v1/jobs/x", 404, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, d, took := get(t, h, tc.from, tc.target)
			if code != tc.code {
				t.Fatalf("status %d, want %d", code, tc.code)
			}
			if code == 200 && (!slices.Equal(d.Jobs, tc.jobs) || d.Version != 4) {
				t.Errorf("got %+v, want version 4, jobs %v", d, tc.jobs)
			}
			if took > time.Second {
				t.Errorf("took %s: should answer at once", took)
			}
		})
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/jobs", nil)
	r.RemoteAddr = "10.64.3.2:1"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
}

func TestLongPoll(t *testing.T) {
	src := newFake()
	src.set("10.64.3.2", Document{Version: 4, Jobs: []string{"cam-1"}})
	src.set("10.64.3.3", Document{Version: 4, Jobs: []string{"cam-2"}})
	h := New(src)

	t.Run("waits for a newer version of its own", func(t *testing.T) {
		go func() {
			time.Sleep(200 * time.Millisecond)
			// Another instance's change wakes the poll, which waits on.
			src.set("10.64.3.3", Document{Version: 5, Jobs: []string{"cam-2", "cam-4"}})
			time.Sleep(200 * time.Millisecond)
			src.set("10.64.3.2", Document{Version: 5, Jobs: []string{"cam-1", "cam-3"}})
		}()
		code, d, took := get(t, h, "10.64.3.2:1", "/v1/jobs?after=4")
		if code != 200 || d.Version != 5 || !slices.Equal(d.Jobs, []string{"cam-1", "cam-3"}) {
			t.Fatalf("%d %+v", code, d)
		}
		if took < 350*time.Millisecond || took > 5*time.Second {
			t.Errorf("answered after %s, want when its version changed (~400ms)", took)
		}
	})
	t.Run("times out with what holds", func(t *testing.T) {
		code, d, took := get(t, h, "10.64.3.2:1", "/v1/jobs?after=5&wait=1")
		if code != 200 || d.Version != 5 {
			t.Fatalf("%d %+v", code, d)
		}
		if took < time.Second {
			t.Errorf("answered after %s, want the wait of 1s", took)
		}
	})
	t.Run("lease expiry answers at once", func(t *testing.T) {
		go func() {
			time.Sleep(200 * time.Millisecond)
			src.set("10.64.3.2", Document{Version: 5, Jobs: []string{}, LeaseExpired: true})
		}()
		code, d, took := get(t, h, "10.64.3.2:1", "/v1/jobs?after=5")
		if code != 200 || !d.LeaseExpired || len(d.Jobs) != 0 {
			t.Fatalf("%d %+v", code, d)
		}
		if took > 5*time.Second {
			t.Errorf("took %s", took)
		}
		// While expired, a poll answers within about a second: no spin,
		// and no client misses it.
		code, d, took = get(t, h, "10.64.3.2:1", "/v1/jobs?after=5")
		if code != 200 || !d.LeaseExpired || took < 900*time.Millisecond || took > 3*time.Second {
			t.Errorf("while expired: %d %+v after %s", code, d, took)
		}
	})
	t.Run("instance removed while polling", func(t *testing.T) {
		go func() {
			time.Sleep(200 * time.Millisecond)
			src.drop("10.64.3.3")
		}()
		if code, _, _ := get(t, h, "10.64.3.3:1", "/v1/jobs?after=5"); code != 404 {
			t.Errorf("status %d, want 404", code)
		}
	})
}

func TestBoundsOpenRequests(t *testing.T) {
	src := newFake()
	src.set("10.64.3.2", Document{Version: 1})
	h := New(src)
	srv := httptest.NewServer(h)
	defer srv.Close()
	// Through a real server the source is 127.0.0.1.
	src.set("127.0.0.1", Document{Version: 1})
	var wg sync.WaitGroup
	for range maxPerSource {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(srv.URL + "/v1/jobs?after=1&wait=2")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	resp, err := http.Get(srv.URL + "/v1/jobs?after=1&wait=2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("request beyond %d open ones: %d, want 429", maxPerSource, resp.StatusCode)
	}
	wg.Wait()
	if code, _, _ := get(t, h, "127.0.0.1:1", "/v1/jobs"); code != 200 {
		t.Errorf("after they ended: %d", code)
	}
}
