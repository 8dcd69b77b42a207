// Package unikernel runs "unikernel" instances: small virtual machines
// booted straight from a kernel (and optional initrd) by qemu, one qemu
// process per instance.
//
// # Images
//
// An instance's spec.Code is one or more comma-separated http(s) URLs of a
// .tar.gz image, matched in order to spec.Arch (the entry whose arch is this
// node's: "amd64" and "x86_64" are the same, as are "arm64" and "aarch64");
// without spec.Arch, Code must be a single URL. A URL may end in a fragment
// "#sha256=<hex>" that the archive must match. The archive holds
//
//	kernel                   the kernel, booted with qemu -kernel (required)
//	initrd                   optional, passed with -initrd; also accepted under
//	                         the names initramfs.cpio.gz, initramfs.cpio
//	cmdline                  optional text file: the kernel command line
//
// at its top level ("./kernel" is fine); other entries are ignored, and the
// files used must be regular files. An image is downloaded once (at most
// Config.MaxImageBytes, both compressed and unpacked) and unpacked into
// <StateDir>/unikernel/cache/<SHA-256 of the URL without fragment>: URLs are
// treated as immutable, so publish a new version under a new URL or pin it
// with a digest (a cached image whose archive does not match the digest is
// downloaded again).
//
// # Virtual machines
//
// An instance runs as
//
//	qemu-system-<arch> -machine q35 (virt on arm64) -accel kvm|tcg -cpu host|max
//	  -m <MemoryMB, default 128> -smp <ceil(MilliCPU/1000), default 1>
//	  -nodefaults -no-reboot -nographic
//	  -kernel kernel [-initrd initrd] -append <command line>
//	  -serial <console.log> -qmp <qmp.sock> -qmp <events.sock>
//	  -device pvpanic -action panic=exit-failure   (x86; pvpanic-pci elsewhere)
//	  -device isa-debug-exit,iobase=0xf4,iosize=4  (x86)
//	  -netdev tap,fd=3 -device virtio-net-pci,romfile=,mac=...  or  -nic none
//
// under a small /bin/sh supervisor that records qemu's exit status, in a
// session of its own: the virtual machines outlive the node engine (see
// Adoption). KVM is used when /dev/kvm can be opened for reading and writing
// and is a hardware-assisted KVM (Runtime.KVM; Config.Accel overrides it),
// software emulation (TCG) otherwise.
//
// The kernel command line is the image's cmdline file, then, for a
// networked instance, "ip=<addr>::<gateway>:<netmask>::eth0:off", then every
// spec.Environment entry (KEY=value), then every spec.Cmd word, each
// appended verbatim as one word (a word with a space is put in double
// quotes; double quotes and control characters are refused). A Linux kernel
// hands unknown KEY=value words to init as its environment and bare words
// as its arguments; other unikernels parse the command line their own way.
//
// The serial console is the instance's log, <instance dir>/console.log:
// qemu writes it to its stdout, a pipe to a log writer (package logwriter,
// Config.LogWriter) that records each line with its time and stream
// "stdout", as containers' logs are; Logs returns its tail. A Linux kernel prints to the VGA console unless
// told otherwise, so when the kernel is a Linux one — an x86 bzImage ("HdrS"
// at offset 0x202 of the file, the x86 boot protocol's header) or an arm64
// Image ("ARM\x64" at 0x38, also gzip'd) — and the command line has no
// console= argument (before a "--"), console=ttyS0 (x86) or
// console=ttyAMA0 (arm64, the virt machine's PL011) is put in front of it.
// A command line naming any console (console=tty0 too) is kept as it is,
// and other kernels (an ELF unikernel, say) get theirs unchanged.
//
// # Network
//
// When spec.Labels[runtimes.LabelNetNS] names a network namespace (made by
// the net manager: eth0 with the instance's address and a default route),
// the virtual machine takes over that address. In the namespace a tap
// device tap0 is created and joined to eth0 by two tc ingress filters
// (u32 match-all, mirred redirect) that pass every frame arriving on eth0
// to tap0 and every frame from tap0 out of eth0 — as Kata Containers'
// "tcfilter" model does. eth0 keeps its address and MAC, so the namespace
// looks to the net manager exactly as it made it; the guest's virtio-net
// device gets eth0's MAC and MTU, and its kernel command line says
// ip=<eth0's address>::<gateway>:<netmask>::eth0:off. The guest configures
// its interface from that (a kernel with CONFIG_IP_PNP does so itself;
// Debian's cloud kernel does not, so its init must). qemu runs in the
// node's namespace and gets the tap as an open file (fd 3). Without the
// label the machine has no network device. Remove deletes the filters and
// the tap and leaves eth0 as it was.
//
// # Exit status
//
// A virtual machine that ends on its own is COMPLETED when qemu exits 0 after
// the guest powered off (or when the reason is unknown because no runtime
// watched it at that moment), and FAILED otherwise, with qemu's exit status
// as ExitCode:
//
//   - the guest panicked and reported it through pvpanic (Linux: the
//     pvpanic-mmio driver on x86): qemu exits 1;
//   - the guest wrote v to the isa-debug-exit port 0xf4 (x86): qemu exits
//     2v+1;
//   - the guest reset (reboot, triple fault, or a panic with panic=-1 and
//     no pvpanic): qemu exits 0 because of -no-reboot, and the runtime, which
//     saw the guest-reset SHUTDOWN event on QMP, reports FAILED (exit code 0);
//   - the accelerator stopped the machine with an internal error (e.g. a KVM
//     that cannot emulate an instruction): qemu would keep it paused, so the
//     runtime, seeing the STOP event and the internal-error run state, quits
//     it and reports FAILED;
//   - qemu was killed, or stopped by a signal, or failed on its own.
//
// # Adoption
//
// Each instance keeps its spec and its files in <StateDir>/unikernel/
// instances/<id>. A new Runtime (after a node engine restart) finds the
// virtual machines still running there — the process named in qemu.pid is
// alive and its command line names the instance directory — and watches
// them (polling every 500 ms, since they are not its children); List
// reports them RUNNING and Remove stops them as usual. Exited ones are
// listed with the status recorded by the supervisor.
//
// # Lifecycle
//
// Remove asks the guest to power off (QMP system_powerdown, an ACPI power
// button press, repeated every 2 s since a guest still booting misses it),
// waits up to Config.StopGrace for qemu to exit, then sends
// QMP quit and finally SIGKILL. Usage reads qemu's /proc/<pid>/stat (CPU)
// and /proc/<pid>/status (VmRSS): the whole virtual machine, as the node
// sees it.
package unikernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/internal/keyed"
	"github.com/thicket-edge/thicket/node_engine/logwriter"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
)

// Virtualization is the SLA virtualization this runtime runs.
const Virtualization = "unikernel"

// Defaults of Config.
const (
	DefaultStateDir      = runtimes.DefaultStateDir
	DefaultMaxImageBytes = 512 << 20
	DefaultStopGrace     = 10 * time.Second
	// DefaultFetchTimeout bounds an image download with the default
	// HTTPClient.
	DefaultFetchTimeout = 10 * time.Minute
	// DefaultMemoryMB is a machine's memory when its spec asks for none.
	DefaultMemoryMB = 128

	// pollInterval is how often an adopted machine's process is checked.
	pollInterval = 500 * time.Millisecond
	// readyTimeout bounds how long Start waits for qemu to run its machine.
	readyTimeout = 60 * time.Second
	// killWait bounds the waits after QMP quit and after SIGKILL.
	killWait = 5 * time.Second
	// powerdownRepeat is how often Remove presses the power button again.
	powerdownRepeat = 2 * time.Second
	// availableTTL is how long a successful qemu probe is trusted.
	availableTTL = time.Minute
)

// Accelerators (Config.Accel).
const (
	AccelAuto = ""
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// Config configures the unikernel runtime.
type Config struct {
	// NodeName names this node (in logs). The host name if empty.
	NodeName string
	// StateDir holds the image cache (<StateDir>/unikernel/cache) and the
	// instances (<StateDir>/unikernel/instances/<id>). DefaultStateDir if
	// empty.
	StateDir string
	// QemuBinary is the qemu system emulator: qemu-system-<arch> (x86_64,
	// aarch64, ... for this machine) found in PATH if empty.
	QemuBinary string
	// MaxImageBytes is the largest image archive downloaded, and the most
	// it may unpack to (DefaultMaxImageBytes if zero or less).
	MaxImageBytes int64
	// StopGrace is how long Remove waits for a guest to power off before
	// it quits qemu (DefaultStopGrace if zero or less).
	StopGrace time.Duration
	// Policy says where images may come from and how many download at
	// once (nil: the default fetch.Policy: public addresses, pinned by
	// sha256). It is checked before every start, cached images included.
	Policy *fetch.Policy
	// HTTPClient downloads images (nil: Policy's client, which checks
	// every connection's address, with DefaultFetchTimeout).
	HTTPClient *http.Client
	// Accel forces the accelerator: AccelKVM or AccelTCG. AccelAuto (empty)
	// uses KVM when Runtime.KVM reports it usable.
	Accel string
	// LogMaxBytes bounds each instance's console log: larger, it is
	// rotated (runtimes.TrimLog; qemu appends to it, so it goes on at the
	// new end; runtimes.DefaultLogMaxBytes if zero or less).
	LogMaxBytes int64
	// LogWriter is the program that writes each machine's console log
	// (logwriter.Run, started as `<program> logwriter.Arg <file>`); if
	// empty, logwriter.Program of this program (os.Executable).
	LogWriter string
}

// Runtime runs instances as qemu virtual machines. It implements
// runtimes.Runtime. Its methods are safe for concurrent use; Start and
// Remove of the same instance are serialised.
type Runtime struct {
	cfg      Config
	log      *slog.Logger
	qemuArch string // x86_64, aarch64, ...
	cacheDir string
	instDir  string
	kvm      bool

	events chan runtimes.State

	instances keyed.Mutex // per instance key: Start and Remove
	fetches   keyed.Mutex // per image cache directory (one per URL without fragment)

	// stop is closed by Close: watchers stop delivering events.
	stop chan struct{}
	// trimCancel ends the console log trimmer (trimWG) at Close.
	trimCancel context.CancelFunc
	trimWG     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	insts  map[string]*instance

	availMu   sync.Mutex
	availAt   time.Time
	availInfo string

	downloads int // under mu, for tests
}

var _ runtimes.Runtime = (*Runtime)(nil)

// New returns a unikernel runtime keeping its cache and instances under
// cfg.StateDir. It adopts the instances it finds there (see the package
// documentation): running virtual machines are watched from now on.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Runtime, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := runtimes.Defaults(&cfg.NodeName, &cfg.StateDir); err != nil {
		return nil, fmt.Errorf("unikernel runtime: %w", err)
	}
	if cfg.MaxImageBytes <= 0 {
		cfg.MaxImageBytes = DefaultMaxImageBytes
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	if cfg.Policy == nil {
		cfg.Policy = &fetch.Policy{}
	}
	if cfg.LogWriter == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("unikernel runtime: the log writer: %w", err)
		}
		cfg.LogWriter, _ = logwriter.Program(exe)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = cfg.Policy.Client(DefaultFetchTimeout)
	}
	switch cfg.Accel {
	case AccelAuto, AccelKVM, AccelTCG:
	default:
		return nil, fmt.Errorf("unikernel runtime: accel %q: want %q, %q or empty (auto)", cfg.Accel, AccelKVM, AccelTCG)
	}
	qarch := qemuArch(runtime.GOARCH)
	if cfg.QemuBinary == "" {
		cfg.QemuBinary = "qemu-system-" + qarch
	}
	base := filepath.Join(cfg.StateDir, "unikernel")
	r := &Runtime{
		cfg:      cfg,
		log:      log.With("runtime", Virtualization),
		qemuArch: qarch,
		cacheDir: filepath.Join(base, "cache"),
		instDir:  filepath.Join(base, "instances"),
		kvm:      kvmUsable(),
		events:   make(chan runtimes.State, runtimes.EventBuffer),
		stop:     make(chan struct{}),
		insts:    map[string]*instance{},
	}
	for _, d := range []string{r.cacheDir, r.instDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("unikernel runtime: %w", err)
		}
	}
	// Partial downloads and unpackings of a runtime that died meanwhile.
	for _, pattern := range []string{".download-*", ".unpack-*"} {
		stale, _ := filepath.Glob(filepath.Join(r.cacheDir, pattern))
		for _, p := range stale {
			_ = os.RemoveAll(p)
		}
	}
	if err := r.adopt(); err != nil {
		return nil, fmt.Errorf("unikernel runtime: %w", err)
	}
	tctx, cancel := context.WithCancel(context.Background())
	r.trimCancel = cancel
	runtimes.KeepFilesBounded(tctx, &r.trimWG, filepath.Join(r.instDir, "*", fileConsole), cfg.LogMaxBytes, r.log)
	return r, nil
}

// Virtualization implements runtimes.Runtime.
func (r *Runtime) Virtualization() string { return Virtualization }

// Config returns the configuration in force (defaults filled in).
func (r *Runtime) Config() Config { return r.cfg }

// KVM reports whether virtual machines use KVM: /dev/kvm opens for reading
// and writing and is a hardware-assisted KVM (not, say, the kvm_pvm module
// of nested cloud sandboxes, which boots only PVM-enabled guest kernels) —
// or Config.Accel forces it.
func (r *Runtime) KVM() bool {
	switch r.cfg.Accel {
	case AccelKVM:
		return true
	case AccelTCG:
		return false
	}
	return r.kvm
}

// kvmUsable reports whether /dev/kvm is usable for ordinary guests.
func kvmUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	// PVM (a KVM module for running guests without hardware virtualization,
	// e.g. inside other virtual machines) needs PVM-enabled guest kernels:
	// an ordinary kernel stops with "KVM internal error ... emulation
	// failure".
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		return false
	}
	return true
}

// Available reports whether qemu is there and runs: the configured binary
// is found and answers -version. A success is trusted for a minute.
func (r *Runtime) Available(ctx context.Context) error {
	r.availMu.Lock()
	defer r.availMu.Unlock()
	if !r.availAt.IsZero() && time.Since(r.availAt) < availableTTL {
		return nil
	}
	bin, err := exec.LookPath(r.cfg.QemuBinary)
	if err != nil {
		return fmt.Errorf("unikernel runtime: qemu: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("unikernel runtime: %s -version: %w: %s", bin, err, strings.TrimSpace(string(out)))
	}
	r.availAt = time.Now()
	r.availInfo = strings.SplitN(string(out), "\n", 2)[0]
	return nil
}

// Events delivers a State whenever a virtual machine ends on its own (not
// when Remove or a replacing Start stops it). It is buffered; when the
// buffer is full further exits are dropped (and logged), so the engine
// should read it continuously and also reconcile with List. The channel is
// closed by Close.
func (r *Runtime) Events() <-chan runtimes.State { return r.events }

// Close stops watching the virtual machines and closes Events. The
// machines themselves keep running (they outlive the node engine); a new
// Runtime adopts them.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.stop)
	close(r.events)
	r.mu.Unlock()
	r.trimCancel()
	r.trimWG.Wait()
	return nil
}

// qemuArch is qemu's name for a Go architecture.
func qemuArch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i386"
	case "ppc64le":
		return "ppc64"
	case "loong64":
		return "loongarch64"
	}
	return goarch
}

// normArch maps an architecture name to Go's (x86_64 → amd64, ...).
func normArch(a string) string {
	a = strings.ToLower(strings.TrimSpace(a))
	switch a {
	case "x86_64", "x86-64", "amd64", "x64":
		return "amd64"
	case "aarch64", "arm64", "armv8":
		return "arm64"
	case "i386", "i686", "x86", "386":
		return "386"
	case "armv7", "armv7l", "armhf", "arm":
		return "arm"
	}
	return a
}

var errClosed = errors.New("runtime closed")

// Capabilities reports "kvm" when unikernels run hardware-accelerated here,
// so that schedulers can prefer this node for them.
func (r *Runtime) Capabilities() []string {
	if r.KVM() && r.cfg.Accel != "tcg" {
		return []string{wire.CapabilityKVM}
	}
	return nil
}
