package containerd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
	ctrd "github.com/thicket-edge/thicket/node_engine/runtimes/containerd"
	"github.com/thicket-edge/thicket/node_engine/runtimes/runtimetest"
)

// TestLogsKeepLastWords: a workload that writes its last line and exits at
// once, restarted as soon as its exit is known (as the engine does), has
// every one of its last lines in its log (issue 23, bug 1).
func TestLogsKeepLastWords(t *testing.T) {
	rt := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sp := spec("die.0", testharness.FreePort(t), "die", "1", "3")
	begin := time.Now()
	const runs = 5
	for i := 0; i < runs; i++ {
		if err := rt.Start(ctx, sp); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		// As the engine does: restart as soon as List shows the exit.
		deadline := time.Now().Add(time.Minute)
		for {
			if st, ok := runtimetest.Find(t, rt, sp.Key); ok && st.Status == wire.StatusFailed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d did not exit", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	logs, err := rt.Logs(ctx, sp.Key, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if s, f := strings.Count(logs, "starting"), strings.Count(logs, "fatal"); s != runs || f != runs {
		t.Errorf("after %d runs the log has %d \"starting\" and %d \"fatal\" lines, want %d of each:\n%s", runs, s, f, runs, logs)
	}
	// Each line is a record: when it was written, and on which stream
	// (issue 23, item 6).
	lines := wire.ParseLog(logs)
	for _, l := range lines {
		want := map[string]string{"starting": wire.StreamStdout, "fatal": wire.StreamStderr}[l.Text]
		if l.Stream != want || l.Time.Before(begin) || l.Time.After(time.Now()) {
			t.Errorf("line %+v: want stream %q and a time since %s", l, want, begin.Format(time.RFC3339Nano))
		}
	}
	if len(lines) != 2*runs {
		t.Errorf("the log parses into %d lines, want %d:\n%s", len(lines), 2*runs, logs)
	}
}

// TestLogsBounded: a chatty instance's log is rotated at the runtime's
// LogMaxBytes while the shim writes it; the shim goes on at the start of
// the emptied file (no hole), and Logs still reads the end across both
// parts. Issue 23, item 6.
func TestLogsBounded(t *testing.T) {
	const max = 64 << 10
	var cfg ctrd.Config
	rt := newRuntime(t, func(c *ctrd.Config) { c.LogMaxBytes = max; cfg = *c })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sp := spec("chatty.0", testharness.FreePort(t), "chatty", "100") // 40 KB/s
	if err := rt.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(cfg.StateDir, "logs", ctrd.ContainerID(cfg.NodeName, sp.Key)+".log")
	testharness.WaitFor(t, 30*time.Second, "the log rotated", func() (bool, string) {
		_, err := os.Stat(file + ".1")
		return err == nil, fmt.Sprint(err)
	})
	time.Sleep(300 * time.Millisecond)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The writer writes whole records: the emptied file starts with one.
	if live := wire.ParseLog(string(b)); len(b) == 0 || b[0] == 0 || len(live) == 0 ||
		live[0].Stream != wire.StreamStdout || !strings.HasPrefix(live[0].Text, "chatty ") {
		t.Errorf("after rotation the live log starts %q", b[:min(len(b), 80)])
	}
	if prev, err := os.Stat(file + ".1"); err != nil || prev.Size() > max+int64(runtimes.LogTrimEvery/time.Second+1)*40<<10 {
		// at most the bound and what is written until the next look
		t.Errorf("rotated part: %v, %v", prev, err)
	}
	tail, err := rt.Logs(ctx, sp.Key, 300<<10)
	if ls := wire.ParseLog(tail); err != nil || len(ls) == 0 || !strings.HasPrefix(ls[0].Text, "chatty ") || ls[0].Time.IsZero() || !strings.HasSuffix(tail, "\n") {
		t.Errorf("Logs across the parts: %d bytes starting %q, %v", len(tail), tail[:min(len(tail), 20)], err)
	}
	if err := rt.Remove(ctx, sp.Key); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{file, file + ".1"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s after Remove: %v", f, err)
		}
	}
}
