package commands

import (
	"testing"

	"github.com/thicket-edge/thicket/api"
)

func TestInstancesColumn(t *testing.T) {
	ins := func(sts ...string) []api.Instance {
		out := make([]api.Instance, len(sts))
		for i, s := range sts {
			out[i] = api.Instance{InstanceNumber: i, Status: s}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		svc  api.Service
		want string
	}{
		{"long-running", api.Service{InstanceList: ins(api.StatusRunning, api.StatusFailed)}, "1/2"},
		{"indexed job", api.Service{Completions: 4, Succeeded: 3,
			InstanceList: ins(api.StatusCompleted, api.StatusCompleted, api.StatusRunning, api.StatusCompleted)}, "3/4 completed"},
		{"indexed job, none yet", api.Service{Completions: 2, InstanceList: ins(api.StatusRunning, api.StatusRunning)}, "0/2 completed"},
	} {
		if got := instancesColumn(tc.svc); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
