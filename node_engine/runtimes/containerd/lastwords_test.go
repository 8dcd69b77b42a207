package containerd_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
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
}
