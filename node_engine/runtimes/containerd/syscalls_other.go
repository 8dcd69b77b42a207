//go:build !amd64 && !arm64 && !ppc64le && !riscv64 && !s390x

package containerd

// nativeSyscalls is unknown on this architecture (gensyscalls has no
// table for it): nativeSyscallsOnly keeps the profile's names as they are.
var nativeSyscalls []string
