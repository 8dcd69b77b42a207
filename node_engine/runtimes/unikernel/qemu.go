package unikernel

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/thicket-edge/thicket/contract/wire"
)

// maxCmdline bounds the kernel command line (x86's COMMAND_LINE_SIZE is
// 2048 bytes with the terminating zero).
const maxCmdline = 2047

// supervisor runs qemu ("$@") and records its exit status in the file exit
// of the instance directory (its working directory), so that a runtime that
// did not start it learns how it ended.
const supervisor = `"$@"; s=$?; echo $s > exit.tmp && mv -f exit.tmp exit; exit $s`

// supervisorName is the supervisor's $0 (seen in ps).
const supervisorName = "thicket-unikernel"

// buildCmdline is the kernel command line of spec (see the package
// documentation): base, then ip=, then the environment, then the command;
// preceded by console=<serial port> for a Linux kernel (kernelHeader, the
// start of its image) when none of that names a console.
func buildCmdline(base string, kernelHeader []byte, gn *guestNet, spec wire.InstanceSpec) (string, error) {
	words := []string{}
	if base != "" {
		words = append(words, base)
	}
	if gn != nil {
		words = append(words, gn.kernelIP())
	}
	extra, err := cmdlineWords(spec)
	if err != nil {
		return "", err
	}
	words = append(words, extra...)
	s := withSerialConsole(kernelHeader, strings.Join(words, " "))
	if len(s) > maxCmdline {
		return "", fmt.Errorf("kernel command line is %d bytes, over %d", len(s), maxCmdline)
	}
	return s, nil
}

// cmdlineWords are spec's environment entries and command words as kernel
// command line words.
func cmdlineWords(spec wire.InstanceSpec) ([]string, error) {
	var out []string
	for i, kv := range spec.Environment {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("environment[%d] %q: want KEY=value", i, kv)
		}
		w, err := cmdlineWord(kv)
		if err != nil {
			return nil, fmt.Errorf("environment[%d]: %w", i, err)
		}
		out = append(out, w)
	}
	for i, c := range spec.Cmd {
		w, err := cmdlineWord(c)
		if err != nil {
			return nil, fmt.Errorf("cmd[%d]: %w", i, err)
		}
		if w != "" {
			out = append(out, w)
		}
	}
	return out, nil
}

// cmdlineWord quotes s as one kernel command line word.
func cmdlineWord(s string) (string, error) {
	for _, c := range s {
		if c == '"' || c < 0x20 && c != '\t' || c == 0x7f {
			return "", fmt.Errorf("%q: double quotes and control characters cannot be passed on a kernel command line", s)
		}
	}
	if strings.ContainsAny(s, " \t") {
		return `"` + s + `"`, nil
	}
	return s, nil
}

// qemuArgs are qemu's arguments for an instance in dir (qemu's working
// directory) booting img with cmdline.
func (r *Runtime) qemuArgs(ctx context.Context, dir string, img *image, spec wire.InstanceSpec, cmdline string, gn *guestNet) []string {
	accel, cpu := AccelTCG, "max"
	if r.KVM() {
		accel, cpu = AccelKVM, "host"
	}
	mem := spec.Resources.MemoryMB
	if mem <= 0 {
		mem = DefaultMemoryMB
	}
	smp := (spec.Resources.MilliCPU + 999) / 1000
	if smp < 1 {
		smp = 1
	}
	args := []string{
		"-no-user-config", "-nodefaults", "-no-reboot", "-display", "none",
		"-machine", r.machine(), "-accel", accel, "-cpu", cpu,
		"-m", strconv.FormatInt(mem, 10) + "M", "-smp", strconv.FormatInt(smp, 10),
		"-pidfile", filepath.Join(dir, fileQemuPid),
		// To the console's log writer (startConsoleWriter), which writes
		// console.log; signal=off: a ^C from the guest is not qemu's.
		"-chardev", "stdio,id=console,signal=off",
		"-serial", "chardev:console",
		// Relative to the working directory: socket paths are short.
		"-qmp", "unix:" + sockQMP + ",server=on,wait=off",
		"-qmp", "unix:" + sockEvents + ",server=on,wait=off",
		"-kernel", img.kernel,
	}
	if img.initrd != "" {
		args = append(args, "-initrd", img.initrd)
	}
	if cmdline != "" {
		args = append(args, "-append", cmdline)
	}
	switch r.qemuArch {
	case "x86_64", "i386":
		args = append(args, "-device", "pvpanic", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04")
	default:
		args = append(args, "-device", "pvpanic-pci")
	}
	if r.qemuAtLeast(ctx, 7, 1) {
		// A guest panic reported through pvpanic ends qemu with status 1.
		args = append(args, "-action", "panic=exit-failure")
	}
	if gn != nil {
		// No option ROM: the kernel is booted directly, and ipxe-qemu (the
		// ROM's package) is only recommended by qemu-system-x86.
		dev := "virtio-net-pci,netdev=n0,romfile=,mac=" + gn.MAC.String()
		if gn.MTU > 0 && gn.MTU != 1500 {
			dev += ",host_mtu=" + strconv.Itoa(gn.MTU)
		}
		args = append(args, "-netdev", "tap,id=n0,fd=3", "-device", dev)
	} else {
		args = append(args, "-nic", "none")
	}
	return args
}

// machine is the -machine value for this architecture.
func (r *Runtime) machine() string {
	switch r.qemuArch {
	case "x86_64", "i386":
		return "q35"
	case "aarch64":
		return "virt,gic-version=max"
	}
	return "virt"
}

var qemuVersionRE = regexp.MustCompile(`version (\d+)\.(\d+)`)

// qemuAtLeast reports whether the qemu binary's version is at least
// major.minor (false if it cannot tell).
func (r *Runtime) qemuAtLeast(ctx context.Context, major, minor int) bool {
	if err := r.Available(ctx); err != nil {
		return false
	}
	r.availMu.Lock()
	info := r.availInfo
	r.availMu.Unlock()
	m := qemuVersionRE.FindStringSubmatch(info)
	if m == nil {
		return false
	}
	ma, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	return ma > major || ma == major && mi >= minor
}
