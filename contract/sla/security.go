package sla

import (
	"fmt"
	"slices"
	"strings"
)

// Security is what a container microservice asks beyond the default
// sandbox (a Thicket extension). By default a container gets Docker's
// defaults: the default seccomp profile, the default capability set without
// CAP_NET_RAW, no_new_privs, masked and read-only /proc paths and the
// node's pids limit.
//
// Privileged and CapAdd widen the sandbox: only an administrator's
// application may ask for them (the root refuses a user's SLA with 403).
// PidsLimit may be set by anyone: it can only lower the node's limit.
type Security struct {
	// Privileged runs the container with every capability, without
	// seccomp, masked paths or no_new_privs, and with the host's devices.
	Privileged bool `json:"privileged,omitempty"`
	// CapAdd adds capabilities to the default set ("CAP_NET_ADMIN" or
	// "NET_ADMIN").
	CapAdd []string `json:"cap_add,omitempty"`
	// PidsLimit bounds the container's processes and threads below the
	// node's limit (thicket-node --pids-limit, which it cannot raise); 0:
	// the node's limit.
	PidsLimit int `json:"pids_limit,omitempty"`
	// Compat32 lets the container make 32-bit system calls (x86 and x32
	// on an x86-64 node, arm on an arm64 one), as Docker's profile does.
	// By default the seccomp profile allows the node's native system calls
	// only: 32-bit binaries are rare in images, their system call
	// interface is a kernel attack surface of its own, and each extra
	// architecture makes runc compile the profile again at every start.
	// Anyone may ask for it.
	Compat32 bool `json:"compat32,omitempty"`
}

// Elevated reports whether s asks for more than the default sandbox:
// privileged or added capabilities.
func (s *Security) Elevated() bool {
	return s != nil && (s.Privileged || len(s.CapAdd) > 0)
}

// maxPidsLimit bounds pids_limit.
const maxPidsLimit = 1 << 22

// Capabilities are the Linux capabilities cap_add may name.
var Capabilities = []string{
	"CAP_AUDIT_CONTROL", "CAP_AUDIT_READ", "CAP_AUDIT_WRITE", "CAP_BLOCK_SUSPEND", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_KILL", "CAP_LEASE", "CAP_LINUX_IMMUTABLE",
	"CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE", "CAP_MKNOD", "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_RAW", "CAP_PERFMON", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
	"CAP_SETUID", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_CHROOT", "CAP_SYS_MODULE", "CAP_SYS_NICE",
	"CAP_SYS_PACCT", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_SYSLOG", "CAP_WAKE_ALARM",
}

// CanonicalCap is a capability name in upper case with its CAP_ prefix.
func CanonicalCap(name string) string {
	name = strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(name, "CAP_") {
		name = "CAP_" + name
	}
	return name
}

// security checks a security block.
func (v *validator) security(path, virt string, s *Security) {
	if virt != VirtContainer && (s.Privileged || len(s.CapAdd) > 0 || s.PidsLimit != 0 || s.Compat32) {
		v.errs.add(path, "applies to container microservices only")
		return
	}
	for i, c := range s.CapAdd {
		if !slices.Contains(Capabilities, CanonicalCap(c)) {
			v.errs.add(fmt.Sprintf("%s.cap_add[%d]", path, i), fmt.Sprintf("%q is not a Linux capability", c))
		}
	}
	if s.PidsLimit < 0 || s.PidsLimit > maxPidsLimit {
		v.errs.add(join(path, "pids_limit"), fmt.Sprintf("must be between 0 (the node's default) and %d", maxPidsLimit))
	}
}
