package containerd

import (
	"context"
	"runtime"
	"slices"

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
	opts = append(opts, seccomp.WithDefaultProfile())
	if sec == nil || !sec.Compat32 {
		opts = append(opts, nativeSyscallsOnly)
	}
	return opts
}

// nativeArch is the seccomp architecture of the node's own system calls.
var nativeArch = map[string]specs.Arch{
	"amd64": specs.ArchX86_64, "arm64": specs.ArchAARCH64, "ppc64le": specs.ArchPPC64LE,
	"s390x": specs.ArchS390X, "riscv64": specs.ArchRISCV64,
}[runtime.GOARCH]

//go:generate go run ./gensyscalls

// nativeSyscallsOnly narrows the seccomp profile to the node's native
// system call interface. containerd's default profile (Docker's) also
// allows the 32-bit ones (x86 and x32 on x86-64, arm on arm64), and runc
// (libseccomp) compiles the profile for each listed architecture at every
// container start. Measured on the bench machine with runc 1.1.5 and
// libseccomp 2.5.4 (runc run of a container that exits at once, median of
// 30 alternating runs): the profile adds 18 ms of CPU and 16.5 ms to the
// start with its three architectures, 6 ms and 5 ms with the native one
// alone. A 32-bit system call, and so a 32-bit binary, is refused unless
// the SLA asks for security.compat32.
//
// It also leaves out the names the native interface does not have (about
// 60 of the profile's 370 on x86-64: 32-bit and other architectures' calls
// such as _llseek or socketcall). With the native architecture alone
// they add nothing to the filter (libseccomp resolves them to pseudo
// numbers no system call has), but runc still resolves and adds each one:
// about 2 ms of a start's CPU. Apply it after the profile.
func nativeSyscallsOnly(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
	if nativeArch == "" || s.Linux == nil || s.Linux.Seccomp == nil || !slices.Contains(s.Linux.Seccomp.Architectures, nativeArch) {
		return nil // an architecture this table does not know: the profile as it is
	}
	sc := s.Linux.Seccomp
	sc.Architectures = []specs.Arch{nativeArch}
	if nativeSyscalls == nil {
		return nil
	}
	kept := sc.Syscalls[:0]
	for _, rule := range sc.Syscalls {
		rule.Names = slices.DeleteFunc(rule.Names, func(n string) bool {
			_, ok := slices.BinarySearch(nativeSyscalls, n)
			return !ok
		})
		if len(rule.Names) > 0 {
			kept = append(kept, rule)
		}
	}
	clear(sc.Syscalls[len(kept):])
	sc.Syscalls = kept
	return nil
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
