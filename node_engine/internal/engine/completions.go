package engine

import (
	"slices"
	"strconv"

	"github.com/thicket-edge/thicket/contract/wire"
)

// withIndex is spec as the runtime starts it: every instance is told its
// index, its instance number (stable across restarts and rescheduling),
// in THICKET_INSTANCE_INDEX; an instance of an indexed one-shot service
// (completions) also the completion count, in THICKET_COMPLETIONS and
// THICKET_POOL_SIZE. An instance with a job grant was told its index and
// pool size already (withJobs). A plain service's size is not told: it
// changes with every scale, which restarts nothing, so a variable set at
// start would go stale.
func withIndex(spec wire.InstanceSpec) wire.InstanceSpec {
	env := slices.Clone(spec.Environment)
	if spec.JobGrant == nil {
		env = append(env, "THICKET_INSTANCE_INDEX="+strconv.Itoa(spec.InstanceNumber))
		if spec.Completions > 0 {
			env = append(env, "THICKET_POOL_SIZE="+strconv.Itoa(spec.Completions))
		}
	}
	if spec.Completions > 0 {
		env = append(env, "THICKET_COMPLETIONS="+strconv.Itoa(spec.Completions))
	}
	spec.Environment = env
	return spec
}
