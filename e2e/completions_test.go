package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestIndexedJob: a one-shot service with completions 4 on a real node:
// its instances 0..3 are created with it, each told its index and the
// count; index 2 fails its first run and its node retries it, same index,
// in the same container; all four end COMPLETED, each index's "done" line
// exactly once, and a COMPLETED index is not run again.
func TestIndexedJob(t *testing.T) {
	s := newSystem(t)
	c := s.addClusterOn(bridgeAddr, "indexed", "")
	s.addOverlayNode(c, "ix1", 84, 1024)
	s.waitNodes(map[string]int{"indexed": 1})
	ids := s.app("indexed", map[string]any{"microservice_name": "shards", "memory": 16, "one_shot": true,
		"completions": 4, "backoff_limit": 2, "cmd": []string{"index-fail-once", "2"}})
	id := ids["shards"]

	var svc *api.Service
	testharness.WaitFor(t, 3*time.Minute, "4 of 4 indices completed", func() (bool, string) {
		ctx, cancel := s.api.ctx()
		defer cancel()
		var err error
		if svc, err = s.api.client().Service(ctx, id); err != nil {
			return false, err.Error()
		}
		var st []string
		for _, in := range svc.InstanceList {
			st = append(st, in.Status+" "+in.StatusDetail)
		}
		return svc.Succeeded == 4, strings.Join(st, "; ")
	})
	if svc.Completions != 4 || len(svc.InstanceList) != 4 {
		t.Errorf("service: completions %d, %d instances", svc.Completions, len(svc.InstanceList))
	}
	logs := func(n int) string {
		l, err := s.api.client().Logs(context.Background(), id, n, 200)
		if err != nil {
			return err.Error()
		}
		return l.Logs
	}
	for n := range 4 {
		in, _ := s.api.instance(id, n)
		wantRestarts := 0
		if n == 2 {
			wantRestarts = 1
		}
		if in.Status != api.StatusCompleted || in.Restarts != wantRestarts {
			t.Errorf("index %d: %s after %d restarts, want COMPLETED after %d", n, in.Status, in.Restarts, wantRestarts)
		}
		var l string
		done := "index " + string(rune('0'+n)) + " of 4 done"
		testharness.WaitFor(t, 30*time.Second, "index's output", func() (bool, string) {
			l = logs(n)
			return strings.Contains(l, done), l
		})
		if got := strings.Count(l, done); got != 1 {
			t.Errorf("index %d completed %d times:\n%s", n, got, l)
		}
		if failed := strings.Count(l, "failing once"); failed != min(1, wantRestarts) {
			t.Errorf("index %d failed %d times:\n%s", n, failed, l)
		}
	}
	// Completed stays completed: nothing runs again.
	time.Sleep(3 * time.Second)
	for n := range 4 {
		if in, _ := s.api.instance(id, n); in.Status != api.StatusCompleted || strings.Count(logs(n), "done") != 1 {
			t.Errorf("index %d later: %s, log:\n%s", n, in.Status, logs(n))
		}
	}

	// The dashboard's service row shows it; an indexed job has no add
	// button (its indices are fixed).
	b := s.adminDashboard(t)
	b.Open("#/apps/" + ids["app"])
	b.WaitText(`.service[data-service="`+id+`"] [data-completed="4"]`, "4/4 completed")
	var hasAdd bool
	b.EvalInto(`document.querySelector('[data-key="add-`+id+`"]') !== null`, &hasAdd)
	if hasAdd {
		t.Errorf("the indexed job's row offers to add an instance")
	}
}
