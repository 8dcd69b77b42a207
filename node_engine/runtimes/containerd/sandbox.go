package containerd

import (
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/oci"

	"github.com/thicket-edge/thicket/contract/wire"
)

// DefaultPidsLimit is Config.PidsLimit when zero: how many processes and
// threads one container may have.
const DefaultPidsLimit = 1024

// droppedCaps are the capabilities of containerd's default set (Docker's)
// that Thicket's containers do not get unless their SLA adds them:
// CAP_NET_RAW lets a process forge packets and sniff its network.
var droppedCaps = []string{"CAP_NET_RAW"}

// sandboxOpts are the spec options that confine a container: on top of
// containerd's defaults (Docker's capability set, no_new_privs, masked and
// read-only /proc and /sys paths, no devices), CAP_NET_RAW dropped, the
// default seccomp profile and a pids limit. sec may add capabilities or ask
// for a privileged container (the root allows that to administrators'
// services only). The pids limit is limit, or sec's when lower.
func sandboxOpts(sec *wire.Security, limit int64) []oci.SpecOpts {
	if sec != nil && sec.PidsLimit > 0 && sec.PidsLimit < limit {
		limit = sec.PidsLimit
	}
	opts := []oci.SpecOpts{oci.WithPidsLimit(limit)}
	if sec != nil && sec.Privileged {
		// As docker run --privileged: every capability, no seccomp,
		// nothing masked, the host's devices.
		return append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices, oci.WithNewPrivileges)
	}
	opts = append(opts, oci.WithDroppedCapabilities(droppedCaps), oci.WithNoNewPrivileges)
	if sec != nil && len(sec.CapAdd) > 0 {
		opts = append(opts, oci.WithAddedCapabilities(sec.CapAdd))
	}
	// Last: the profile allows the syscalls the capabilities need.
	return append(opts, seccomp.WithDefaultProfile())
}
