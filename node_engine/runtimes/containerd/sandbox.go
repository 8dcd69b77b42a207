package containerd

import (
	"context"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/oci"
	"github.com/opencontainers/runtime-spec/specs-go"

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

// bindSysUnlessOwnNetNS makes /sys a read-only bind of the host's in a
// container that has a user namespace but joins a network namespace (the
// overlay's, the node's or the host's): the kernel lets only the owner of
// a network namespace mount sysfs, and that owner is the host's user
// namespace. Docker does the same with --userns-remap and --net=host.
// Apply it last.
func bindSysUnlessOwnNetNS(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
	if s.Linux == nil {
		return nil
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace && ns.Path == "" {
			return nil // a new one, made in the user namespace: sysfs mounts
		}
	}
	for i, m := range s.Mounts {
		if m.Destination == "/sys" {
			s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys",
				Options: []string{"rbind", "ro", "nosuid", "noexec", "nodev"}}
		}
	}
	return nil
}
