package unikernel

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"strings"
)

// Linux kernel image headers, recognised to send the console to the serial
// port (see withSerialConsole).
const (
	// x86: the real-mode setup header of the Linux/x86 boot protocol
	// (Documentation/arch/x86/boot.rst) has the magic "HdrS" at 0x202 of
	// a bzImage.
	x86HdrSOffset = 0x202
	x86HdrS       = "HdrS"
	// arm64: the Image header (Documentation/arch/arm64/booting.rst) has
	// the magic "ARM\x64" at 0x38.
	arm64MagicOffset = 0x38
	arm64Magic       = "ARM\x64"

	// kernelHeaderSize is how much of the kernel's start is looked at.
	kernelHeaderSize = x86HdrSOffset + len(x86HdrS)
)

// serialConsoleOf is the console= value of a Linux kernel whose image
// starts with header: ttyS0 (the 8250 UART qemu's -serial is on q35) for an
// x86 bzImage, ttyAMA0 (the PL011 of qemu's virt machine) for an arm64
// Image, "" for any other kernel (an ELF unikernel, say), which is left to
// find its console itself.
func serialConsoleOf(header []byte) string {
	switch {
	case hasAt(header, x86HdrSOffset, x86HdrS):
		return "ttyS0"
	case hasAt(header, arm64MagicOffset, arm64Magic):
		return "ttyAMA0"
	}
	return ""
}

// hasAt reports whether b holds magic at offset off.
func hasAt(b []byte, off int, magic string) bool {
	return len(b) >= off+len(magic) && string(b[off:off+len(magic)]) == magic
}

// withSerialConsole returns the kernel command line cmdline for the kernel
// whose image starts with header, with "console=<serial port>" put first
// when the kernel is a Linux one (serialConsoleOf) and cmdline names no
// console: Linux prints to the VGA console otherwise, and the instance's
// log, the serial port, stays empty. A cmdline with any console= argument
// (console=tty0 too) is left as it is, as is the command line of any other
// kernel.
func withSerialConsole(header []byte, cmdline string) string {
	tty := serialConsoleOf(header)
	if tty == "" || namesConsole(cmdline) {
		return cmdline
	}
	// First: words after a "--" are init's, not the kernel's.
	if cmdline == "" {
		return "console=" + tty
	}
	return "console=" + tty + " " + cmdline
}

// namesConsole reports whether the kernel command line has a console=
// parameter. It splits words as the kernel does (at blanks outside double
// quotes, quotes removed) and stops at "--", after which words are init's.
func namesConsole(cmdline string) bool {
	var word strings.Builder
	inQuote := false
	for i := 0; i <= len(cmdline); i++ {
		if i < len(cmdline) {
			c := cmdline[i]
			if c == '"' {
				inQuote = !inQuote
				continue
			}
			if inQuote || c != ' ' && c != '\t' && c != '\n' {
				word.WriteByte(c)
				continue
			}
		}
		w := word.String()
		word.Reset()
		if w == "--" {
			return false
		}
		if strings.HasPrefix(w, "console=") {
			return true
		}
	}
	return false
}

// readKernelHeader returns the first kernelHeaderSize bytes of the kernel at
// path (fewer if it is shorter), uncompressed if the file is gzip'd (as
// Debian's arm64 kernels are; qemu boots those).
func readKernelHeader(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, kernelHeaderSize)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, err
	}
	buf = buf[:n]
	if !bytes.HasPrefix(buf, []byte{0x1f, 0x8b}) {
		return buf, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		return buf, nil // not gzip after all: as it is
	}
	defer zr.Close()
	out := make([]byte, kernelHeaderSize)
	n, err = io.ReadFull(zr, out)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return buf, nil
	}
	return out[:n], nil
}
