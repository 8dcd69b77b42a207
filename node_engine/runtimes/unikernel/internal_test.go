package unikernel

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

func TestParseCodeAndSelect(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		code    string
		arch    []string
		goarch  string
		wantURL string
		wantSum string
		wantErr string
	}{
		{code: "http://h/a.tar.gz", goarch: "amd64", wantURL: "http://h/a.tar.gz"},
		{code: " https://h/a.tar.gz#sha256=" + strings.ToUpper(sum) + " ", goarch: "amd64", wantURL: "https://h/a.tar.gz", wantSum: sum},
		{code: "http://h/arm.tar.gz,http://h/x86.tar.gz", arch: []string{"aarch64", "x86_64"}, goarch: "amd64", wantURL: "http://h/x86.tar.gz"},
		{code: "http://h/arm.tar.gz, http://h/x86.tar.gz", arch: []string{"arm64", "amd64"}, goarch: "arm64", wantURL: "http://h/arm.tar.gz"},
		{code: "http://h/x86.tar.gz", arch: []string{"x86-64"}, goarch: "amd64", wantURL: "http://h/x86.tar.gz"},
		{code: "http://h/a.tar.gz", arch: []string{"arm64"}, goarch: "amd64", wantErr: "no image for this node's architecture amd64"},
		{code: "http://h/a.tar.gz", arch: []string{"arm64", "amd64"}, goarch: "amd64", wantErr: "only 1 URL"},
		{code: "http://h/a,http://h/b", goarch: "amd64", wantErr: "no arch"},
		{code: "", goarch: "amd64", wantErr: "no image URL"},
		{code: "http://h/a,", goarch: "amd64", wantErr: "code[1]: empty"},
		{code: "file:///etc/passwd", goarch: "amd64", wantErr: "http or https"},
		{code: "http:///nohost", goarch: "amd64", wantErr: "http or https"},
		{code: "http://h/a#sha256=zz", goarch: "amd64", wantErr: "64 hex digits"},
		{code: "http://h/a#" + sum, goarch: "amd64", wantErr: "sha256="},
	} {
		srcs, err := parseCode(tc.code)
		var src imageSource
		if err == nil {
			src, err = selectSource(srcs, tc.arch, tc.goarch)
		}
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q %v: err %v, want %q", tc.code, tc.arch, err, tc.wantErr)
			}
			continue
		}
		if err != nil || src.URL != tc.wantURL || src.Digest != tc.wantSum {
			t.Errorf("%q %v on %s: %+v, %v; want %s %s", tc.code, tc.arch, tc.goarch, src, err, tc.wantURL, tc.wantSum)
		}
	}
}

type tarEntry struct {
	name     string
	typeflag byte
	body     string
	link     string
}

func makeTarGz(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: 0o644, Linkname: e.link}
		if e.typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if e.typeflag == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestUnpack(t *testing.T) {
	reg := func(name, body string) tarEntry { return tarEntry{name: name, typeflag: tar.TypeReg, body: body} }
	for _, tc := range []struct {
		name    string
		entries []tarEntry
		limit   int64
		want    map[string]string // files in the directory afterwards
		wantErr string
	}{
		{
			name:    "all files",
			entries: []tarEntry{{name: "./", typeflag: tar.TypeDir}, reg("./kernel", "K"), reg("./initrd", "I"), reg("cmdline", "console=ttyS0\n"), reg("README", "x")},
			want:    map[string]string{"kernel": "K", "initrd": "I", "cmdline": "console=ttyS0\n"},
		},
		{
			name:    "initramfs names",
			entries: []tarEntry{reg("initramfs.cpio", "C"), reg("kernel", "K"), reg("initramfs.cpio.gz", "G")},
			want:    map[string]string{"kernel": "K", "initrd": "G"},
		},
		{
			name:    "preferred initrd first",
			entries: []tarEntry{reg("initrd", "I"), reg("initramfs.cpio", "C"), reg("kernel", "K")},
			want:    map[string]string{"kernel": "K", "initrd": "I"},
		},
		{
			name:    "traversal is ignored",
			entries: []tarEntry{reg("../kernel", "evil"), reg("/etc/kernel", "evil"), reg("a/../../kernel", "evil")},
			wantErr: "no kernel",
		},
		{
			name:    "symlink kernel",
			entries: []tarEntry{{name: "kernel", typeflag: tar.TypeSymlink, link: "/etc/shadow"}},
			wantErr: "not a regular file",
		},
		{
			name:    "hardlink initrd",
			entries: []tarEntry{reg("kernel", "K"), {name: "initrd", typeflag: tar.TypeLink, link: "kernel"}},
			wantErr: "not a regular file",
		},
		{
			name:    "device",
			entries: []tarEntry{{name: "kernel", typeflag: tar.TypeChar}},
			wantErr: "not a regular file",
		},
		{
			name:    "twice",
			entries: []tarEntry{reg("kernel", "K"), reg("./kernel", "K2")},
			wantErr: "twice",
		},
		{
			name:    "over the limit",
			entries: []tarEntry{reg("kernel", strings.Repeat("K", 100)), reg("initrd", strings.Repeat("I", 100))},
			limit:   150,
			wantErr: "more than 150 bytes",
		},
		{
			name:    "cmdline too long",
			entries: []tarEntry{reg("kernel", "K"), reg("cmdline", strings.Repeat("c", maxCmdlineFile+1))},
			wantErr: "cmdline",
		},
		{
			name:    "empty",
			entries: nil,
			wantErr: "no kernel",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			limit := tc.limit
			if limit == 0 {
				limit = 1 << 20
			}
			err := unpack(bytes.NewReader(makeTarGz(t, tc.entries)), dir, limit)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("unpack: %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unpack: %v", err)
			}
			got := map[string]string{}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
				got[e.Name()] = string(b)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("files %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
	if err := unpack(strings.NewReader("plain text"), t.TempDir(), 1<<20); err == nil || !strings.Contains(err.Error(), "not a .tar.gz") {
		t.Errorf("unpack of plain text: %v", err)
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(makeTarGz(f, []tarEntry{{name: "kernel", typeflag: tar.TypeReg, body: "K"}, {name: "../initrd", typeflag: tar.TypeReg, body: "I"}}))
	f.Add(makeTarGz(f, []tarEntry{{name: "kernel", typeflag: tar.TypeSymlink, link: "/"}}))
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "img")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_ = unpack(bytes.NewReader(data), dir, 1<<16)
		// Nothing outside dir, nothing but our three names inside.
		ents, _ := os.ReadDir(parent)
		if len(ents) != 1 {
			t.Fatalf("unpack wrote outside its directory: %v", ents)
		}
		ents, _ = os.ReadDir(dir)
		for _, e := range ents {
			switch e.Name() {
			case fileKernel, fileInitrd, fileCmdline:
				if !e.Type().IsRegular() {
					t.Fatalf("%s is not a regular file", e.Name())
				}
			default:
				t.Fatalf("unpack wrote %s", e.Name())
			}
		}
	})
}

func FuzzParseCode(f *testing.F) {
	f.Add("http://h/a.tar.gz#sha256="+strings.Repeat("0", 64), "x86_64")
	f.Add("http://h/a,https://h/b", "arm64,amd64")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, code, arch string) {
		srcs, err := parseCode(code)
		if err != nil {
			return
		}
		for _, s := range srcs {
			if !strings.HasPrefix(s.URL, "http://") && !strings.HasPrefix(s.URL, "https://") {
				t.Fatalf("accepted %q", s.URL)
			}
			if s.Digest != "" && len(s.Digest) != 64 {
				t.Fatalf("digest %q", s.Digest)
			}
		}
		var archs []string
		if arch != "" {
			archs = strings.Split(arch, ",")
		}
		if src, err := selectSource(srcs, archs, "amd64"); err == nil && src.URL == "" {
			t.Fatalf("selected an empty URL")
		}
	})
}

func TestBuildCmdline(t *testing.T) {
	gn := &guestNet{
		Addr:    netip.MustParsePrefix("10.30.1.5/16"),
		Gateway: netip.MustParseAddr("10.30.0.1"),
		MAC:     net.HardwareAddr{2, 0, 0, 0, 0, 1},
	}
	sp := wire.InstanceSpec{Environment: []string{"A=1", "GREETING=hi there"}, Cmd: []string{"thicket.mode=exit0", "two words", ""}}
	got, err := buildCmdline("console=ttyS0 quiet", bzImageHeader(), gn, sp)
	want := `console=ttyS0 quiet ip=10.30.1.5::10.30.0.1:255.255.0.0::eth0:off A=1 "GREETING=hi there" thicket.mode=exit0 "two words"`
	if err != nil || got != want {
		t.Errorf("buildCmdline = %q, %v\nwant            %q", got, err, want)
	}
	if got, _ := buildCmdline("", nil, nil, wire.InstanceSpec{}); got != "" {
		t.Errorf("empty cmdline = %q", got)
	}
	// A Linux kernel gets the serial console unless a word names one.
	if got, _ := buildCmdline("", bzImageHeader(), nil, wire.InstanceSpec{}); got != "console=ttyS0" {
		t.Errorf("empty cmdline of a bzImage = %q", got)
	}
	got, err = buildCmdline("quiet", bzImageHeader(), gn, wire.InstanceSpec{Cmd: []string{"a"}})
	want = "console=ttyS0 quiet ip=10.30.1.5::10.30.0.1:255.255.0.0::eth0:off a"
	if err != nil || got != want {
		t.Errorf("buildCmdline of a bzImage = %q, %v\nwant                        %q", got, err, want)
	}
	if got, _ := buildCmdline("quiet", bzImageHeader(), nil, wire.InstanceSpec{Cmd: []string{"console=hvc0"}}); got != "quiet console=hvc0" {
		t.Errorf("console= from the spec: %q", got)
	}
	noGW := guestNet{Addr: netip.MustParsePrefix("10.0.0.2/24")}
	if got := noGW.kernelIP(); got != "ip=10.0.0.2:::255.255.255.0::eth0:off" {
		t.Errorf("kernelIP without gateway = %q", got)
	}
	for _, bad := range []wire.InstanceSpec{
		{Environment: []string{"=x"}},
		{Environment: []string{"A B=x"}},
		{Cmd: []string{`say "hi"`}},
		{Cmd: []string{"a\nb"}},
		{Cmd: []string{strings.Repeat("x", maxCmdline)}},
	} {
		if _, err := buildCmdline("console=ttyS0", nil, nil, bad); err == nil {
			t.Errorf("buildCmdline(%+v) accepted", bad)
		}
	}
}

func TestExitState(t *testing.T) {
	for _, tc := range []struct {
		exit, reason, qemuLog string
		status                string
		code                  int
		detail                string
	}{
		{exit: "0", reason: "guest-shutdown", status: wire.StatusCompleted, detail: "guest powered off"},
		{exit: "0", status: wire.StatusCompleted, detail: "qemu exited with code 0"},
		{exit: "0", reason: "guest-reset", status: wire.StatusFailed, detail: "guest reset"},
		{exit: "0", reason: "host-signal", status: wire.StatusFailed, detail: "signal"},
		{exit: "0", reason: "internal-error", qemuLog: "KVM internal error. Suberror: 1\nextra data", status: wire.StatusFailed, detail: "internal error (with KVM, try Accel tcg): KVM internal error. Suberror: 1"},
		{exit: "1", reason: "guest-panic", status: wire.StatusFailed, code: 1, detail: "the guest panicked"},
		{exit: "1", qemuLog: "qemu: could not load kernel", status: wire.StatusFailed, code: 1, detail: "could not load kernel"},
		{exit: "7", status: wire.StatusFailed, code: 7, detail: "isa-debug-exit value 3"},
		{exit: "137", status: wire.StatusFailed, code: 137, detail: "killed by signal 9"},
		{exit: "2", status: wire.StatusFailed, code: 2, detail: "code 2"},
		{reason: "guest-shutdown", status: wire.StatusCompleted, detail: "guest powered off"},
		{status: wire.StatusFailed, detail: "unknown"},
	} {
		dir := t.TempDir()
		for f, v := range map[string]string{fileExit: tc.exit, fileReason: tc.reason, fileQemuLog: tc.qemuLog} {
			if v != "" {
				os.WriteFile(filepath.Join(dir, f), []byte(v+"\n"), 0o600)
			}
		}
		st := exitState(dir)
		if st.Status != tc.status || st.ExitCode != tc.code || !strings.Contains(st.Detail, tc.detail) || st.ExitedAt.IsZero() {
			t.Errorf("exit %q reason %q: %+v; want %s code %d with %q", tc.exit, tc.reason, st, tc.status, tc.code, tc.detail)
		}
	}
}

func TestCleanConsole(t *testing.T) {
	in := "\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS\r\nline two\r\n"
	if got := string(cleanConsole([]byte(in))); got != "SeaBIOS\nline two\n" {
		t.Errorf("cleanConsole = %q", got)
	}
}

func TestArchNames(t *testing.T) {
	for in, want := range map[string]string{"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64", "riscv64": "riscv64"} {
		if got := normArch(in); got != want {
			t.Errorf("normArch(%q) = %q, want %q", in, got, want)
		}
	}
	if qemuArch("amd64") != "x86_64" || qemuArch("arm64") != "aarch64" || qemuArch("riscv64") != "riscv64" {
		t.Errorf("qemuArch")
	}
}
