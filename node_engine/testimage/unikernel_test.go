package testimage_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/node_engine/testimage"
)

func TestBuildUnikernel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := testimage.BuildUnikernel(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if filepath.Base(p) != testimage.UnikernelImageName {
		t.Errorf("archive named %s", p)
	}
	files := readTarGz(t, f)
	vmlinuz, _, err := testimage.CloudKernel()
	if err != nil {
		t.Fatal(err)
	}
	kernel, _ := os.ReadFile(vmlinuz)
	if !bytes.Equal(files["kernel"], kernel) {
		t.Errorf("kernel is not %s", vmlinuz)
	}
	if got := strings.TrimSpace(string(files["cmdline"])); !strings.Contains(got, "panic=-1") {
		t.Errorf("cmdline %q", got)
	}
	entries := readCpioGz(t, files["initrd"])
	for _, want := range []string{"init", "bin/busybox", "dev/console", "etc/acpi/PWRF/00000080", "lib/modules/load-order"} {
		if _, ok := entries[want]; !ok {
			t.Errorf("initrd lacks %s", want)
		}
	}
	order := strings.Fields(string(entries["lib/modules/load-order"]))
	pos := map[string]int{}
	for i, m := range order {
		pos[m] = i
		if _, ok := entries["lib/modules/"+m]; !ok {
			t.Errorf("load-order names %s, not in the initrd", m)
		}
	}
	// Dependencies come first (when these are modules at all).
	if i, ok := pos["virtio_net.ko"]; ok {
		for _, dep := range []string{"virtio.ko", "virtio_ring.ko", "net_failover.ko"} {
			if j, ok := pos[dep]; ok && j > i {
				t.Errorf("%s loads after virtio_net.ko: %v", dep, order)
			}
		}
	}
	t.Logf("initrd: %d bytes, modules %v", len(files["initrd"]), order)

	// The image is built once per process: the same bytes again.
	again, err := testimage.UnikernelImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	onDisk, _ := os.ReadFile(p)
	if !bytes.Equal(again, onDisk) {
		t.Errorf("UnikernelImage differs from what BuildUnikernel wrote")
	}

	// Without the cmdline file: the same kernel and initrd, nothing else.
	noCmdline, err := testimage.UnikernelImageNoCmdline(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bare := readTarGz(t, bytes.NewReader(noCmdline))
	if len(bare) != 2 || !bytes.Equal(bare["kernel"], files["kernel"]) || !bytes.Equal(bare["initrd"], files["initrd"]) {
		names := []string{}
		for n := range bare {
			names = append(names, n)
		}
		t.Errorf("image without cmdline holds %v, want the same kernel and initrd only", names)
	}
	if again, _ := testimage.UnikernelImageNoCmdline(ctx); !bytes.Equal(again, noCmdline) {
		t.Errorf("UnikernelImageNoCmdline differs the second time")
	}
}

// readTarGz reads a .tar.gz of regular files: name -> content.
func readTarGz(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			t.Errorf("%s is not a regular file", hdr.Name)
		}
		b, _ := io.ReadAll(tr)
		files[hdr.Name] = b
	}
	return files
}

func TestFileServer(t *testing.T) {
	s := testimage.ServeFiles(t)
	url := s.Add("a.bin", []byte("content"))
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "content" || s.Requests("a.bin") != 1 {
		t.Errorf("got %q, %d requests", b, s.Requests("a.bin"))
	}
	resp, err = http.Get(s.URL + "/missing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing file: %s", resp.Status)
	}
}

// readCpioGz reads a gzip'd newc cpio archive: name -> content.
func readCpioGz(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	off := 0
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+110 > len(raw) || string(raw[off:off+6]) != "070701" {
			t.Fatalf("bad cpio header at %d", off)
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(raw[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("bad cpio field at %d: %v", off, err)
			}
			return int(v)
		}
		size, nameSize := field(6), field(11)
		name := string(raw[off+110 : off+110+nameSize-1])
		body := align(off + 110 + nameSize)
		if name == "TRAILER!!!" {
			return out
		}
		out[name] = raw[body : body+size]
		off = align(body + size)
	}
}
