// Package poll waits for conditions.
package poll

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
