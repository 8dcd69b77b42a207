package httpapi

import (
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/state"
)

// TestBackoffIsNotFailed: an instance reported FAILED with a restart
// pending is shown as BACKOFF with the time of the restart, not as a final
// FAILED (issue 23, bug 9); one without a pending restart stays FAILED.
func TestBackoffIsNotFailed(t *testing.T) {
	at := time.Now().Add(4 * time.Second).UTC()
	svc := &state.Service{}
	for _, c := range []struct {
		name   string
		in     state.Instance
		status string
		at     time.Time
	}{
		{"restart pending", state.Instance{Status: wire.StatusFailed, Detail: "exited with code 3; restarting in 4s", RestartAt: at},
			api.StatusBackoff, at},
		{"final", state.Instance{Status: wire.StatusFailed, Detail: "exited with code 3"}, api.StatusFailed, time.Time{}},
		{"running", state.Instance{Status: wire.StatusRunning}, api.StatusRunning, time.Time{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := restInstance(svc, &c.in)
			if got.Status != c.status || !got.RestartAt.Equal(c.at) || got.StatusDetail != c.in.Detail {
				t.Errorf("shown as %s (%q) restart at %v; want %s at %v", got.Status, got.StatusDetail, got.RestartAt, c.status, c.at)
			}
		})
	}
}
