package engine

import (
	"slices"
	"strconv"

	"github.com/thicket-edge/thicket/contract/wire"
)

// withCompletions is spec as the runtime starts it: an instance of an
// indexed one-shot service (completions) is told its index and the
// completion count in THICKET_INSTANCE_INDEX (unless its job grant already
// says it: withJobs) and THICKET_COMPLETIONS.
func withCompletions(spec wire.InstanceSpec) wire.InstanceSpec {
	if spec.Completions <= 0 {
		return spec
	}
	env := slices.Clone(spec.Environment)
	if spec.JobGrant == nil {
		env = append(env, "THICKET_INSTANCE_INDEX="+strconv.Itoa(spec.InstanceNumber))
	}
	spec.Environment = append(env, "THICKET_COMPLETIONS="+strconv.Itoa(spec.Completions))
	return spec
}
