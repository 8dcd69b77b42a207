package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestNodeEngineRestart: a node engine that is away for ~20 s (lost, its
// instances UNKNOWN) and then started again costs its instances nothing:
// the same tasks run on, with the same instance IPs, no restart and no
// second loss of the node (issue 23, bug 2).
func TestNodeEngineRestart(t *testing.T) {
	s := newSystem(t)
	c := s.addClusterOn(bridgeAddr, "restart", "")
	n := s.addOverlayNode(c, "r1", 81, 1024)
	s.waitNodes(map[string]int{"restart": 1})
	ids := s.app("restart", map[string]any{"microservice_name": "web", "memory": 16, "environment": []string{"INSTANCE=web"}})
	web := ids["web"]
	s.scaleUp(web)
	s.scaleUp(web)
	before := map[int]api.Instance{}
	for i := 0; i < 2; i++ {
		before[i] = s.api.waitInstance(web, i, 2*time.Minute, "running with an IP", func(in api.Instance) bool {
			return running(in) && in.InstanceIP != ""
		})
	}
	tasks := taskPIDs(t, s.ctrNS)
	if len(tasks) != 2 {
		t.Fatalf("want two running tasks, have %v", tasks)
	}

	n.proc.Stop()
	testharness.WaitFor(t, time.Minute, "the cluster declares the node lost", func() (bool, string) {
		return strings.Contains(c.proc.Output(), "node lost"), ""
	})
	time.Sleep(20 * time.Second)
	lost := strings.Count(c.proc.Output(), "node lost")
	n.proc.restart()
	back := time.Now()
	for i := 0; i < 2; i++ {
		s.api.waitInstance(web, i, time.Minute, "running again", running)
	}
	// Watch for as long as the churn took: twice the node lost within 30 s.
	seen := map[string]bool{}
	for time.Since(back) < 40*time.Second {
		for i := 0; i < 2; i++ {
			in, _ := s.api.instance(web, i)
			seen[in.Status] = true
			if in.Status == wire.StatusRunning && in.InstanceIP != before[i].InstanceIP {
				t.Errorf("instance %d: IP %s, was %s", i, in.InstanceIP, before[i].InstanceIP)
			}
			if in.Restarts != 0 {
				t.Errorf("instance %d restarted %d times", i, in.Restarts)
			}
		}
		if t.Failed() {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if now := taskPIDs(t, s.ctrNS); fmt.Sprint(now) != fmt.Sprint(tasks) {
		t.Errorf("tasks changed: before %v, now %v", tasks, now)
	}
	if after := strings.Count(c.proc.Output(), "node lost"); after != lost {
		t.Errorf("the cluster declared the node lost %d more times after it came back:\n%s", after-lost, testharness.Tail(c.proc.Output(), 4000))
	}
	for st := range seen {
		if st != wire.StatusRunning {
			t.Errorf("after the node came back its instances were %s (seen: %v)", st, seen)
		}
	}
}

// TestQuickExitLogs: a service that prints a line, sleeps a second, prints
// its last words to stderr and exits 3 at once, restarted by its node again
// and again: every run's last words are in its log (issue 23, bug 1: 6
// "starting" lines showed only 3 "fatal" ones), and its status says a
// restart is pending (BACKOFF) between the runs.
func TestQuickExitLogs(t *testing.T) {
	s := newSystem(t)
	c := s.addClusterOn(bridgeAddr, "quick", "")
	s.addOverlayNode(c, "q1", 82, 1024)
	s.waitNodes(map[string]int{"quick": 1})
	ids := s.app("quick", map[string]any{"microservice_name": "die", "memory": 16, "cmd": []string{"die", "1", "3"}})
	die := ids["die"]
	s.scaleUp(die)
	backoff := false
	in := s.api.waitInstance(die, 0, 3*time.Minute, "four restarts", func(in api.Instance) bool {
		backoff = backoff || in.Status == api.StatusBackoff && !in.RestartAt.IsZero()
		return in.Restarts >= 4
	})
	if !backoff {
		t.Errorf("the crash-looping instance was never shown as BACKOFF")
	}
	// The run after the fourth restart ends too, then the log is complete.
	time.Sleep(3 * time.Second)
	logs, err := s.api.client().Logs(context.Background(), die, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	starting, fatal := strings.Count(logs.Logs, "starting"), strings.Count(logs.Logs, "fatal")
	t.Logf("after %d restarts: %d starting, %d fatal", in.Restarts, starting, fatal)
	if starting < 5 || fatal < starting-1 {
		t.Errorf("%d runs started and %d said their last words:\n%s", starting, fatal, logs.Logs)
	}
}
