package api

import "testing"

func TestSummarize(t *testing.T) {
	ins := func(sts ...string) []Instance {
		out := make([]Instance, len(sts))
		for i, s := range sts {
			out[i] = Instance{InstanceNumber: i, Status: s}
		}
		return out
	}
	for _, c := range []struct {
		name             string
		in               []Instance
		oneShot          bool
		status, detail   string
		running, desired int
	}{
		{"none", nil, false, StatusCreated, "no instances", 0, 0},
		{"all running", ins(StatusRunning, StatusRunning), false, StatusRunning, "2 RUNNING", 2, 2},
		{"one without room", ins(StatusRunning, StatusNoCapacity), false, StatusDegraded,
			"1 of 2 running: 1 RUNNING, 1 NO_CAPACITY", 1, 2},
		{"one crash-looping", ins(StatusBackoff, StatusRunning), false, StatusDegraded,
			"1 of 2 running: 1 RUNNING, 1 BACKOFF", 1, 2},
		{"one unknown", ins(StatusRunning, StatusUnknown, StatusRunning), false, StatusDegraded,
			"2 of 3 running: 2 RUNNING, 1 UNKNOWN", 2, 3},
		{"finished ones do not count", ins(StatusRunning, StatusCompleted), false, StatusRunning,
			"1 RUNNING, 1 COMPLETED", 1, 1},
		{"a one-shot's failure is its end", ins(StatusRunning, StatusFailed), true, StatusRunning,
			"1 RUNNING, 1 FAILED", 1, 1},
		{"a service's failure is not", ins(StatusRunning, StatusFailed), false, StatusDegraded,
			"1 of 2 running: 1 RUNNING, 1 FAILED", 1, 2},
		{"none running", ins(StatusNoCapacity, StatusScheduled), false, StatusScheduled,
			"1 SCHEDULED, 1 NO_CAPACITY", 0, 2},
		{"backoff before failed", ins(StatusFailed, StatusBackoff), false, StatusBackoff,
			"1 BACKOFF, 1 FAILED", 0, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, d := SummarizeService(c.in, c.oneShot)
			if st != c.status || d != c.detail {
				t.Errorf("SummarizeService = %q, %q; want %q, %q", st, d, c.status, c.detail)
			}
			if r, w := Count(c.in, c.oneShot); r != c.running || w != c.desired {
				t.Errorf("Count = %d of %d; want %d of %d", r, w, c.running, c.desired)
			}
		})
	}
}
