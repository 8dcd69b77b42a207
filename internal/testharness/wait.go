package testharness

import (
	"context"
	"fmt"
	"time"
)

// Until calls cond every interval until it returns true, ctx ends or the
// timeout passes; the error then names what was awaited and the last state
// cond described.
func Until(ctx context.Context, timeout, interval time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return nil
		}
		if state != "" {
			last = state
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s; last seen: %s", what, timeout, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// WaitFor is Until for a test: it polls cond every 200 ms and fails the test
// when timeout passes, naming what was awaited and the last state seen.
func WaitFor(t TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	if err := Until(context.Background(), timeout, 200*time.Millisecond, what, func() (bool, string) {
		ok, state := cond()
		return ok, Tail(state, 2000)
	}); err != nil {
		t.Fatalf("%v", err)
	}
}
