package commands

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while the CLI writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEventsFollow: thicket events --follow prints the events it has, then
// the new ones when the live stream says the instance has some, each once,
// and ignores changes of other services; an interrupt ends it with 0.
func TestEventsFollow(t *testing.T) {
	var mu sync.Mutex
	events := []string{`{"time":"2026-12-06T07:00:00Z","source":"root","message":"requested by alice"}`}
	send := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/auth/login":
			_, _ = w.Write([]byte(`{"token":"t","refresh_token":"r","expires_in":3600,"username":"alice","role":"user"}`))
		case "/api/service/svc1":
			_, _ = w.Write([]byte(`{"microserviceID":"svc1","microservice_name":"web","app_name":"shop","instance_list":[{"instance_number":0}]}`))
		case "/api/service/svc1/instance/0/events":
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(w, `{"instance_number":0,"events":[%s]}`, strings.Join(events, ","))
		case "/api/events/stream":
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "event: hello\ndata: {}\n\n")
			w.(http.Flusher).Flush()
			for {
				select {
				case msg := <-send:
					fmt.Fprint(w, msg)
					w.(http.Flusher).Flush()
				case <-r.Context().Done():
					return
				}
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var login bytes.Buffer
	if code := Main(ctx, "v0", []string{"--config", dir, "--server", srv.URL, "login", "-u", "alice", "-p", "pw"}, strings.NewReader(""), &login, &login); code != ExitOK {
		t.Fatalf("login: %d %s", code, login.String())
	}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, "v0", []string{"--config", dir, "--server", srv.URL, "events", "svc1", "--follow"}, strings.NewReader(""), &out, &errb)
	}()
	wait := func(what string, cond func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond(out.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s; out %q err %q", what, out.String(), errb.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait("first event", func(s string) bool { return strings.Contains(s, "requested by alice") })
	time.Sleep(100 * time.Millisecond) // the stream is open

	mu.Lock()
	events = append(events, `{"time":"2026-12-06T07:00:01Z","source":"node w1","message":"started"}`)
	mu.Unlock()
	send <- "id: e.1\nevent: change\ndata: {\"changes\":[{\"kind\":\"event\",\"id\":\"svc2.0\"}]}\n\n"
	time.Sleep(200 * time.Millisecond)
	if strings.Contains(out.String(), "started") {
		t.Fatal("printed new events on a change of another service")
	}
	send <- "id: e.2\nevent: change\ndata: {\"changes\":[{\"kind\":\"event\",\"id\":\"svc1.0\"}]}\n\n"
	wait("the new event", func(s string) bool { return strings.Contains(s, "started") })
	send <- "id: e.3\nevent: change\ndata: {\"reset\":true,\"changes\":[]}\n\n"
	time.Sleep(200 * time.Millisecond)
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d, err %q", code, errb.String())
	}
	if got := out.String(); strings.Count(got, "requested by alice") != 1 || strings.Count(got, "started") != 1 {
		t.Errorf("each event once, got:\n%s", got)
	}
}
