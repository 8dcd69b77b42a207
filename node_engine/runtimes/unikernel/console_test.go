package unikernel

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// bzImageHeader is the start of an x86 bzImage as the kernel's build makes
// it (arch/x86/boot/header.S): the EFI stub's "MZ", the setup header at
// 0x1f1 with boot_flag 0xAA55 at 0x1fe, the jump at 0x200, "HdrS" at 0x202
// and the protocol version at 0x206.
func bzImageHeader() []byte {
	b := make([]byte, 0x400)
	copy(b, "MZ")
	b[0x1f1] = 0x1b                                  // setup_sects
	binary.LittleEndian.PutUint16(b[0x1fe:], 0xaa55) // boot_flag
	b[0x200], b[0x201] = 0xeb, 0x6a                  // jmp start_of_setup
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x206:], 0x020f) // version 2.15
	return b
}

// arm64ImageHeader is the 64-byte header of an arm64 Image
// (arch/arm64/include/asm/image.h), EFI stub's "MZ" first.
func arm64ImageHeader() []byte {
	b := make([]byte, 0x40)
	copy(b, "MZ")
	binary.LittleEndian.PutUint64(b[0x10:], 0x2000000) // image_size
	binary.LittleEndian.PutUint64(b[0x18:], 0xa)       // flags: LE, 4K pages
	copy(b[0x38:], "ARM\x64")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x40) // PE header offset
	return b
}

// elfHeader is the start of a 64-bit x86 ELF executable, as a Unikraft or
// MirageOS (Solo5) unikernel is.
func elfHeader() []byte {
	b := make([]byte, 0x240)
	copy(b, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(b[0x10:], 2)    // ET_EXEC
	binary.LittleEndian.PutUint16(b[0x12:], 0x3e) // EM_X86_64
	return b
}

func TestSerialConsole(t *testing.T) {
	bz, arm, elf := bzImageHeader(), arm64ImageHeader(), elfHeader()
	misplaced := make([]byte, 0x400)
	copy(misplaced[0x200:], "HdrS")
	for _, tc := range []struct {
		name    string
		header  []byte
		cmdline string
		want    string
	}{
		{"bzImage, empty", bz, "", "console=ttyS0"},
		{"bzImage, other words kept", bz, `quiet panic=-1 "GREETING=hi there" arg`, `console=ttyS0 quiet panic=-1 "GREETING=hi there" arg`},
		{"bzImage, console=ttyS0", bz, "console=ttyS0 quiet", "console=ttyS0 quiet"},
		{"bzImage, console=tty0 is a choice", bz, "quiet console=tty0", "quiet console=tty0"},
		{"bzImage, console with options last", bz, "quiet console=ttyS1,115200n8", "quiet console=ttyS1,115200n8"},
		{"bzImage, tab before console", bz, "quiet\tconsole=hvc0", "quiet\tconsole=hvc0"},
		{"bzImage, quoted console", bz, `"console=ttyS0"`, `"console=ttyS0"`},
		{"bzImage, console inside a quoted value", bz, `x="a console=tty0"`, `console=ttyS0 x="a console=tty0"`},
		{"bzImage, console= of init after --", bz, "quiet -- console=tty0", "console=ttyS0 quiet -- console=tty0"},
		{"bzImage, consoleblank is no console", bz, "consoleblank=0", "console=ttyS0 consoleblank=0"},
		{"bzImage, earlyprintk is no console", bz, "earlyprintk=ttyS0", "console=ttyS0 earlyprintk=ttyS0"},
		{"bzImage, xconsole is no console", bz, "xconsole=ttyS0", "console=ttyS0 xconsole=ttyS0"},
		{"bzImage header only", bz[:0x206], "", "console=ttyS0"},
		{"arm64 Image", arm, "quiet", "console=ttyAMA0 quiet"},
		{"arm64 Image, empty", arm, "", "console=ttyAMA0"},
		{"arm64 Image, console named", arm, "console=ttyAMA0", "console=ttyAMA0"},
		{"ELF unikernel", elf, "", ""},
		{"ELF unikernel with arguments", elf, "netdev.ip=10.0.0.2/24 -- /app", "netdev.ip=10.0.0.2/24 -- /app"},
		{"short file", bz[:0x204], "quiet", "quiet"},
		{"short arm64 file", arm[:0x3a], "", ""},
		{"empty file", nil, "", ""},
		{"HdrS elsewhere", misplaced, "", ""},
	} {
		if got := withSerialConsole(tc.header, tc.cmdline); got != tc.want {
			t.Errorf("%s: withSerialConsole(%q) = %q, want %q", tc.name, tc.cmdline, got, tc.want)
		}
	}
}

func TestReadKernelHeader(t *testing.T) {
	dir := t.TempDir()
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	bigArm := append(arm64ImageHeader(), make([]byte, 1<<20)...)
	for _, tc := range []struct {
		name    string
		data    []byte
		console string
	}{
		{"bzImage", append(bzImageHeader(), make([]byte, 1<<16)...), "ttyS0"},
		{"arm64 Image", bigArm, "ttyAMA0"},
		{"gzip'd arm64 Image", gz(bigArm), "ttyAMA0"},
		{"gzip'd short file", gz([]byte("ARM")), ""},
		{"bad gzip", []byte{0x1f, 0x8b, 0}, ""},
		{"ELF", elfHeader(), ""},
		{"short", []byte("MZ"), ""},
		{"empty", nil, ""},
	} {
		p := filepath.Join(dir, "kernel")
		if err := os.WriteFile(p, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		h, err := readKernelHeader(p)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if len(h) > kernelHeaderSize {
			t.Errorf("%s: read %d bytes", tc.name, len(h))
		}
		if got := serialConsoleOf(h); got != tc.console {
			t.Errorf("%s: console %q, want %q", tc.name, got, tc.console)
		}
	}
	if _, err := readKernelHeader(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing kernel: %v", err)
	}
}
