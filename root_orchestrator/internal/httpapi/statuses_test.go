package httpapi_test

import (
	"testing"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestStatusesMatchTheTiers keeps the API module's instance statuses (its
// own constants: the module imports nothing of Thicket's) equal to the ones
// the tiers report, which the API shows as they are.
func TestStatusesMatchTheTiers(t *testing.T) {
	for _, c := range []struct{ api, wire string }{
		{api.StatusRequested, wire.StatusRequested},
		{api.StatusScheduled, wire.StatusScheduled},
		{api.StatusCreating, wire.StatusCreating},
		{api.StatusRunning, wire.StatusRunning},
		{api.StatusCompleted, wire.StatusCompleted},
		{api.StatusFailed, wire.StatusFailed},
		{api.StatusNoCapacity, wire.StatusNoCapacity},
		{api.StatusLost, wire.StatusLost},
		{api.StatusUnknown, wire.StatusUnknown},
	} {
		if c.api != c.wire {
			t.Errorf("api status %q, the tiers report %q", c.api, c.wire)
		}
	}
	// The API's own: a service's or application's summary (CREATED,
	// DEGRADED) and BACKOFF, which the root shows for a FAILED instance
	// with a restart pending (wire.InstanceStatus.RestartAt). No tier
	// reports them.
	for _, own := range []string{api.StatusCreated, api.StatusDegraded, api.StatusBackoff} {
		for _, w := range []string{wire.StatusRequested, wire.StatusScheduled, wire.StatusCreating, wire.StatusRunning,
			wire.StatusCompleted, wire.StatusFailed, wire.StatusNoCapacity, wire.StatusLost, wire.StatusUnknown} {
			if own == w {
				t.Errorf("the API's own status %q is also a tier's", own)
			}
		}
	}
}
