package pprofserve

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// listening returns the local addresses (hex, as /proc/net/tcp writes them)
// of the TCP sockets this process listens on.
func listening(t *testing.T) []string {
	t.Helper()
	fds, err := filepath.Glob("/proc/self/fd/*")
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // no IPv6
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fs := strings.Fields(line)
			if len(fs) > 9 && fs[3] == "0A" && inodes[fs[9]] {
				out = append(out, fs[1])
			}
		}
	}
	slices.Sort(out)
	return out
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestStart(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	before := listening(t)

	// No flag: nothing listens.
	addr, err := Start("", log)
	if addr != nil || err != nil {
		t.Fatalf(`Start(""): %v, %v; want nil, nil`, addr, err)
	}
	if got := listening(t); !slices.Equal(got, before) {
		t.Fatalf("without an address the process listens on %v, before on %v", got, before)
	}

	// With it: one listener more, answering the profiles and nothing else.
	addr, err = Start("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	if got := listening(t); len(got) != len(before)+1 {
		t.Fatalf("with an address the process listens on %v, before on %v", got, before)
	}
	base := "http://" + addr.String()
	if code, body := get(t, base+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") || !strings.Contains(body, "heap") {
		t.Fatalf("GET /debug/pprof/: %d\n%s", code, body)
	}
	if code, body := get(t, base+"/debug/pprof/heap?debug=1"); code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Fatalf("GET /debug/pprof/heap?debug=1: %d\n%.300s", code, body)
	}
	if code, _ := get(t, base+"/"); code != http.StatusNotFound {
		t.Fatalf("GET /: %d, want 404 (the listener serves the profiles only)", code)
	}

	if _, err := Start(addr.String(), log); err == nil {
		t.Fatal("Start on an address in use: no error")
	}
}

func TestRequested(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  string
		want bool
	}{
		{nil, "", false},
		{[]string{"--listen", ":10000", "--log-level", "debug"}, "", false},
		{[]string{"--pprof", "127.0.0.1:6060"}, "", true},
		{[]string{"--data-dir", "/x", "--pprof=127.0.0.1:6060"}, "", true},
		{[]string{"--pprofile"}, "", false},
		{[]string{"--", "--pprof", "x"}, "", false},
		{nil, "127.0.0.1:6060", true},
	} {
		if got := requested(c.args, c.env); got != c.want {
			t.Errorf("requested(%q, %q) = %v, want %v", c.args, c.env, got, c.want)
		}
	}
}
