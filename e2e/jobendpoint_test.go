package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestJobEndpoint: instances on the overlay long-poll their jobs on their
// gateway (THICKET_JOBS_URL) from inside their containers: each gets its
// own, as rendezvous hashing says, and a change of the list without a
// restart; an instance of another service, which has no jobs, gets none.
func TestJobEndpoint(t *testing.T) {
	s := newSystem(t)
	c := s.addCluster("jobsep", "")
	s.addOverlayNode(c, "je1", 71, 1024)
	s.waitNodes(map[string]int{"jobsep": 1})
	list := []string{"feed-a", "feed-b", "feed-c", "feed-d", "feed-e", "feed-f"}
	ids := s.app("jobsep", map[string]any{"microservice_name": "pollers", "memory": 100, "cmd": []string{"jobs-poll"},
		"jobs": list})
	id := ids["pollers"]
	s.scaleUp(id)
	s.scaleUp(id)

	logs := func(n int) string {
		ctx, cancel := s.api.ctx()
		defer cancel()
		l, err := s.api.client().Logs(ctx, id, n, 200)
		if err != nil {
			return err.Error()
		}
		return l.Logs
	}
	// polled waits until instance n printed the answer version: jobs, at
	// a version above after.
	polled := func(n int, after int64, want []string) int64 {
		t.Helper()
		var version int64
		re := regexp.MustCompile(`poll (\d+): ` + regexp.QuoteMeta(strings.Join(want, ",")) + "\n")
		testharness.WaitFor(t, 2*time.Minute, fmt.Sprintf("instance %d polls its jobs %v", n, want), func() (bool, string) {
			l := logs(n)
			m := re.FindAllStringSubmatch(l, -1)
			if len(m) == 0 {
				return false, l
			}
			fmt.Sscan(m[len(m)-1][1], &version)
			return version > after, l
		})
		return version
	}
	two := rendezvous(list, 0, 1)
	v0 := polled(0, 0, two["0"])
	polled(1, 0, two["1"])
	if strings.Contains(logs(0), "poll error") {
		t.Errorf("instance 0 had errors polling:\n%s", logs(0))
	}

	// A new list reaches the instances live, through the long poll.
	list = append(list, "feed-g", "feed-h")
	ctx, cancel := s.api.ctx()
	if _, err := s.api.client().SetJobs(ctx, id, list); err != nil {
		t.Fatal(err)
	}
	cancel()
	two = rendezvous(list, 0, 1)
	polled(0, v0, two["0"])
	polled(1, v0, two["1"])
	for n := range 2 {
		if in, _ := s.api.instance(id, n); in.Restarts != 0 {
			t.Errorf("instance %d restarted %d times", n, in.Restarts)
		}
	}

	// The dashboard shows who owns which job.
	b := s.adminDashboard(t)
	b.Open("#/apps/" + ids["app"])
	panel := `.service [data-jobs="` + id + `"]`
	b.WaitText(panel+" .sub-title", fmt.Sprintf("Jobs (%d)", len(list)))
	b.WaitText(panel+" .jobs-unowned-count", "every job owned")
	for n := range 2 {
		for _, j := range two[strconv.Itoa(n)] {
			b.WaitText(fmt.Sprintf(`%s tr[data-row="%d"]`, panel, n), j)
		}
	}
	b.Screenshot("jobs")

	// Another service's instance asks the same URL: it has no jobs.
	url := regexp.MustCompile(`polling (http://\S+)`).FindStringSubmatch(logs(0))
	if url == nil {
		t.Fatalf("instance 0 did not print its job URL:\n%s", logs(0))
	}
	other := s.app("jobsnosy", map[string]any{"microservice_name": "nosy", "memory": 50, "cmd": []string{"fetch", url[1], "3"}})["nosy"]
	s.scaleUp(other)
	testharness.WaitFor(t, 2*time.Minute, "an instance without jobs is told so", func() (bool, string) {
		ctx, cancel := s.api.ctx()
		defer cancel()
		l, err := s.api.client().Logs(ctx, other, 0, 50)
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(l.Logs, "fetch 3:"), l.Logs
	})
	ctx, cancel = s.api.ctx()
	defer cancel()
	l, _ := s.api.client().Logs(ctx, other, 0, 50)
	if !strings.Contains(l.Logs, "no instance with jobs has the address") || strings.Contains(l.Logs, "feed-") {
		t.Errorf("the other service's instance got:\n%s", l.Logs)
	}
}
