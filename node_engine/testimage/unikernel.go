package testimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// The unikernel-style test image (BuildUnikernel): Debian's cloud kernel
// and a busybox initramfs whose /init (testimage/unikernel/init) serves
// HTTP. What the image prints and serves:
const (
	// UnikernelImageName is the file name of the image archive.
	UnikernelImageName = "unikernel.tar.gz"
	// UnikernelBooting is printed on the console when /init starts.
	UnikernelBooting = "thicket unikernel: booting"
	// UnikernelUp is printed, followed by " <ip>" (or " no-network"), once
	// the network is configured.
	UnikernelUp = "unikernel up"
	// UnikernelHello is the body served on UnikernelPort at "/".
	UnikernelHello = "hello from unikernel"
	// UnikernelPort is the HTTP port the image serves on.
	UnikernelPort = 8080
	// UnikernelCmdline is the image's cmdline file (amd64).
	UnikernelCmdline = "console=ttyS0 quiet panic=-1"
)

// Modes of the image, selected by a kernel command line word (e.g. spec.Cmd
// = []string{testimage.UnikernelModeExit0}):
const (
	// UnikernelModeExit0 prints "done" and powers off: qemu exits 0.
	UnikernelModeExit0 = "thicket.mode=exit0"
	// UnikernelModePanic crashes the kernel; the pvpanic driver reports
	// it, so qemu (with -action panic=exit-failure) exits 1.
	UnikernelModePanic = "thicket.mode=panic"
	// UnikernelModeReboot resets the machine: qemu with -no-reboot exits 0,
	// with a guest-reset SHUTDOWN event.
	UnikernelModeReboot = "thicket.mode=reboot"
	// UnikernelModeAlloc, with a word UnikernelAlloc(mb), takes mb MiB of
	// memory at once: the machine powers off if that worked (qemu exits 0)
	// and crashes as in UnikernelModePanic if the machine has not that
	// much memory (qemu exits 1).
	UnikernelModeAlloc = "thicket.mode=alloc"
)

// UnikernelAlloc is the kernel command line word that says how much
// memory UnikernelModeAlloc takes.
func UnikernelAlloc(mb int64) string { return fmt.Sprintf("thicket.alloc=%d", mb) }

//go:embed unikernel/init
var unikernelInit []byte

//go:embed unikernel/power-button
var unikernelPowerButton []byte

// debianArch is Debian's name for this machine's architecture.
func debianArch() string {
	return runtime.GOARCH // amd64, arm64: the same names
}

// CloudKernel finds the installed Debian cloud kernel
// (/boot/vmlinuz-<version>-cloud-<arch>; the newest if several) and returns
// its path and version.
func CloudKernel() (vmlinuz, version string, err error) {
	pattern := "/boot/vmlinuz-*-cloud-" + debianArch()
	matches, _ := filepath.Glob(pattern)
	if len(matches) == 0 {
		return "", "", fmt.Errorf("testimage: no kernel matches %s: apt-get install linux-image-cloud-%s", pattern, debianArch())
	}
	sort.Slice(matches, func(i, j int) bool {
		fi, _ := os.Stat(matches[i])
		fj, _ := os.Stat(matches[j])
		if fi != nil && fj != nil && !fi.ModTime().Equal(fj.ModTime()) {
			return fi.ModTime().After(fj.ModTime())
		}
		return matches[i] > matches[j]
	})
	vmlinuz = matches[0]
	version = strings.TrimPrefix(filepath.Base(vmlinuz), "vmlinuz-")
	return vmlinuz, version, nil
}

// busyboxPaths are where Debian's busybox-static installs busybox.
var busyboxPaths = []string{"/bin/busybox", "/usr/bin/busybox"}

// staticBusybox returns the content of a statically linked busybox.
func staticBusybox() ([]byte, error) {
	for _, p := range busyboxPaths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("testimage: %s: %w", p, err)
		}
		dynamic := false
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				dynamic = true
			}
		}
		f.Close()
		if dynamic {
			return nil, fmt.Errorf("testimage: %s is dynamically linked: apt-get install busybox-static", p)
		}
		return data, nil
	}
	return nil, errors.New("testimage: no busybox found: apt-get install busybox-static")
}

// Kernel modules the image loads when they are not built in: the virtio
// network device on PCI (required), and pvpanic and the ACPI power button
// with its input events (optional).
var (
	requiredModules = []string{"virtio_pci", "virtio_net"}
	optionalModules = []string{"pvpanic_mmio", "pvpanic_pci", "button", "evdev"}
)

// kmodule is a kernel module file to put in the initramfs.
type kmodule struct {
	name string // file name in the initramfs
	data []byte
}

// kernelModules returns the module files needed with the kernel of version,
// dependencies first.
func kernelModules(version string) ([]kmodule, error) {
	base := filepath.Join("/lib/modules", version)
	depFile, err := os.Open(filepath.Join(base, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("testimage: modules of kernel %s: %w (apt-get install linux-image-cloud-%s)", version, err, debianArch())
	}
	defer depFile.Close()
	deps := map[string][]string{} // module path -> dependency paths
	byName := map[string]string{} // normalised module name -> path
	sc := bufio.NewScanner(depFile)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		byName[moduleName(mod)] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("testimage: modules.dep: %w", err)
	}
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(base, "modules.builtin")); err == nil {
		for _, line := range strings.Fields(string(b)) {
			builtin[moduleName(line)] = true
		}
	}

	var order []string
	seen := map[string]bool{}
	var visit func(mod string)
	visit = func(mod string) {
		if seen[mod] {
			return
		}
		seen[mod] = true
		for _, d := range deps[mod] {
			visit(d)
		}
		order = append(order, mod)
	}
	for _, name := range requiredModules {
		switch mod, ok := byName[name]; {
		case ok:
			visit(mod)
		case builtin[name]:
		default:
			return nil, fmt.Errorf("testimage: kernel %s has no module %s and does not build it in", version, name)
		}
	}
	for _, name := range optionalModules {
		if mod, ok := byName[name]; ok {
			visit(mod)
		}
	}
	out := make([]kmodule, 0, len(order))
	for _, mod := range order {
		data, err := os.ReadFile(filepath.Join(base, mod))
		if err != nil {
			return nil, fmt.Errorf("testimage: %w", err)
		}
		name := path.Base(mod)
		switch {
		case strings.HasSuffix(name, ".ko"):
		case strings.HasSuffix(name, ".ko.gz"):
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				return nil, fmt.Errorf("testimage: %s: %w", mod, err)
			}
			data, err = io.ReadAll(zr)
			if err != nil {
				return nil, fmt.Errorf("testimage: %s: %w", mod, err)
			}
			name = strings.TrimSuffix(name, ".gz")
		default:
			return nil, fmt.Errorf("testimage: module %s is compressed in a format the image cannot load (want .ko or .ko.gz)", mod)
		}
		out = append(out, kmodule{name: name, data: data})
	}
	return out, nil
}

// moduleName is a module's name from its path: base name without .ko*,
// with '-' written '_' (as the kernel does).
func moduleName(p string) string {
	n := path.Base(strings.TrimSpace(p))
	if i := strings.Index(n, ".ko"); i >= 0 {
		n = n[:i]
	}
	return strings.ReplaceAll(n, "-", "_")
}

// BuildUnikernel builds the unikernel-style test image into dir and returns
// the path of the archive (UnikernelImageName): a .tar.gz holding
//
//	kernel   the installed Debian cloud kernel (linux-image-cloud-amd64)
//	initrd   a gzip'd newc cpio: a static busybox (busybox-static), /init
//	         (testimage/unikernel/init), the kernel modules for virtio-net,
//	         pvpanic and the ACPI power button, and acpid's power button
//	         action
//	cmdline  UnikernelCmdline
//
// The archive's content depends only on the installed packages, so its
// digest is stable on a machine.
func BuildUnikernel(ctx context.Context, dir string) (string, error) {
	data, err := UnikernelImage(ctx)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, UnikernelImageName)
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return "", fmt.Errorf("testimage: %w", err)
	}
	return out, nil
}

// UnikernelNoCmdlineImageName is the file name of the image archive
// without a cmdline file (UnikernelImageNoCmdline).
const UnikernelNoCmdlineImageName = "unikernel-nocmdline.tar.gz"

var unikernelImage struct {
	sync.Mutex
	kernel, initrd []byte
	archives       map[bool][]byte // by whether it has the cmdline file
}

// UnikernelImage returns the archive BuildUnikernel writes, built once per
// process.
func UnikernelImage(ctx context.Context) ([]byte, error) {
	return unikernelArchive(ctx, true)
}

// UnikernelImageNoCmdline returns the archive BuildUnikernel writes without
// its cmdline file: just kernel and initrd, so that the kernel command line
// names no console (the runtime has to send Linux's console to the serial
// port itself), is not quiet and has no panic=-1. Built once per process.
func UnikernelImageNoCmdline(ctx context.Context) ([]byte, error) {
	return unikernelArchive(ctx, false)
}

// unikernelArchive returns the image archive, with or without the cmdline
// file; kernel and initrd are read and built once per process.
func unikernelArchive(ctx context.Context, withCmdline bool) ([]byte, error) {
	unikernelImage.Lock()
	defer unikernelImage.Unlock()
	if data := unikernelImage.archives[withCmdline]; data != nil {
		return data, nil
	}
	if unikernelImage.kernel == nil {
		kernel, initrd, err := buildUnikernelParts(ctx)
		if err != nil {
			return nil, err
		}
		unikernelImage.kernel, unikernelImage.initrd = kernel, initrd
	}
	files := []tarFile{
		{"kernel", unikernelImage.kernel},
		{"initrd", unikernelImage.initrd},
	}
	if withCmdline {
		cmdline := UnikernelCmdline
		if runtime.GOARCH == "arm64" {
			cmdline = strings.Replace(cmdline, "ttyS0", "ttyAMA0", 1)
		}
		files = append(files, tarFile{"cmdline", []byte(cmdline + "\n")})
	}
	data, err := tarGz(files)
	if err != nil {
		return nil, err
	}
	if unikernelImage.archives == nil {
		unikernelImage.archives = map[bool][]byte{}
	}
	unikernelImage.archives[withCmdline] = data
	return data, nil
}

// buildUnikernelParts reads the image's kernel and builds its initrd.
func buildUnikernelParts(ctx context.Context) (kernel, initrd []byte, err error) {
	vmlinuz, version, err := CloudKernel()
	if err != nil {
		return nil, nil, err
	}
	kernel, err = os.ReadFile(vmlinuz)
	if err != nil {
		return nil, nil, fmt.Errorf("testimage: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	initrd, err = buildInitrd(version)
	if err != nil {
		return nil, nil, err
	}
	return kernel, initrd, nil
}

// tarFile is a regular file of an image archive.
type tarFile struct {
	name string
	data []byte
}

// tarGz writes files as a .tar.gz with fixed metadata (the same content,
// the same bytes).
func tarGz(files []tarFile) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("testimage: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("testimage: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("testimage: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("testimage: %w", err)
	}
	return buf.Bytes(), nil
}

// buildInitrd builds the image's initramfs for the kernel of version.
func buildInitrd(version string) ([]byte, error) {
	busybox, err := staticBusybox()
	if err != nil {
		return nil, err
	}
	mods, err := kernelModules(version)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	cw := &cpioWriter{w: zw}
	for _, d := range []string{"bin", "dev", "etc", "etc/acpi", "etc/acpi/PWRF", "lib", "lib/modules", "proc", "sys", "tmp", "www"} {
		cw.dir(d)
	}
	cw.charDev("dev/console", 0o600, 5, 1)
	cw.file("bin/busybox", 0o755, busybox)
	cw.file("init", 0o755, unikernelInit)
	cw.file("etc/acpi/PWRF/00000080", 0o755, unikernelPowerButton)
	var order strings.Builder
	for _, m := range mods {
		cw.file("lib/modules/"+m.name, 0o644, m.data)
		order.WriteString(m.name + "\n")
	}
	cw.file("lib/modules/load-order", 0o644, []byte(order.String()))
	if err := cw.close(); err != nil {
		return nil, fmt.Errorf("testimage: initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("testimage: initramfs: %w", err)
	}
	return buf.Bytes(), nil
}

// cpioWriter writes a cpio archive in the "newc" format the kernel
// unpacks as an initramfs. The first error sticks.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	n   int64
	err error
}

const (
	cpioDir  = 0o040000
	cpioReg  = 0o100000
	cpioChar = 0o020000
)

func (c *cpioWriter) dir(name string) { c.entry(name, cpioDir|0o755, 2, 0, 0, nil) }
func (c *cpioWriter) file(name string, perm uint32, b []byte) {
	c.entry(name, cpioReg|perm, 1, 0, 0, b)
}
func (c *cpioWriter) charDev(name string, perm uint32, major, minor uint32) {
	c.entry(name, cpioChar|perm, 1, major, minor, nil)
}

func (c *cpioWriter) entry(name string, mode, nlink, rmajor, rminor uint32, data []byte) {
	if c.err != nil {
		return
	}
	c.ino++
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name + "\x00"))
	c.pad()
	c.write(data)
	c.pad()
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
}

// pad aligns the archive to 4 bytes.
func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) close() error {
	c.entry("TRAILER!!!", 0, 1, 0, 0, nil)
	return c.err
}
