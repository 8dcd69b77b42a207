package unikernel

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/node_engine/runtimes"
	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
)

// Names of the files of an unpacked image.
const (
	fileKernel  = "kernel"
	fileInitrd  = "initrd"
	fileCmdline = "cmdline"
	fileDigest  = "sha256" // hex SHA-256 of the archive the image came from
)

// initrdNames are the archive names accepted for the initrd, by preference.
var initrdNames = []string{"initrd", "initramfs.cpio.gz", "initramfs.cpio"}

// maxCmdlineFile bounds the image's cmdline file.
const maxCmdlineFile = 4096

// imageSource is one parsed URL of spec.Code; its Digest is the wanted
// SHA-256 of the archive.
type imageSource = fetch.Source

// image is an unpacked image in the cache.
type image struct {
	dir     string
	kernel  string
	initrd  string // "" if none
	cmdline string
	digest  string
	header  []byte // the kernel's first bytes (readKernelHeader)
}

// parseCode splits spec.Code into its URLs, each an http(s) URL optionally
// with a fragment sha256=<64 hex digits>.
func parseCode(code string) ([]imageSource, error) {
	if strings.TrimSpace(code) == "" {
		return nil, errors.New("no image URL (code)")
	}
	var out []imageSource
	for i, part := range strings.Split(code, ",") {
		part = strings.TrimSpace(part)
		src, err := parseURL(part)
		if err != nil {
			return nil, fmt.Errorf("code[%d]: %w", i, err)
		}
		out = append(out, src)
	}
	return out, nil
}

func parseURL(s string) (imageSource, error) {
	if s == "" {
		return imageSource{}, errors.New("empty image URL")
	}
	return fetch.Parse("image", s)
}

// selectSource picks the URL for architecture goarch: the one at the
// position of goarch in arch, or the only one when arch is empty.
func selectSource(srcs []imageSource, arch []string, goarch string) (imageSource, error) {
	if len(arch) == 0 {
		if len(srcs) != 1 {
			return imageSource{}, fmt.Errorf("code has %d URLs but the spec lists no arch to match them with", len(srcs))
		}
		return srcs[0], nil
	}
	want := normArch(goarch)
	for i, a := range arch {
		if normArch(a) != want {
			continue
		}
		if i >= len(srcs) {
			return imageSource{}, fmt.Errorf("arch[%d] is %s but code has only %d URL(s)", i, a, len(srcs))
		}
		return srcs[i], nil
	}
	return imageSource{}, fmt.Errorf("no image for this node's architecture %s (arch: %s)", want, strings.Join(arch, ", "))
}

// image returns the unpacked image of spec code for this node's
// architecture, downloading it unless cached.
func (r *Runtime) image(ctx context.Context, code string, arch []string) (*image, error) {
	srcs, err := parseCode(code)
	if err != nil {
		return nil, err
	}
	src, err := selectSource(srcs, arch, runtime.GOARCH)
	if err != nil {
		return nil, err
	}
	if err := r.cfg.Policy.CheckURL("image", src); err != nil {
		return nil, err
	}
	dir := r.imageDir(src.URL)
	unlock := r.fetches.Lock(dir) // and the collector (gc.go)
	defer unlock()
	runtimes.TouchUsed(dir)
	if img, err := loadImage(dir); err == nil {
		if src.Digest == "" || img.digest == src.Digest {
			return img, nil
		}
		r.log.Info("cached image does not match its digest; downloading it again", "url", src.URL, "cached", img.digest, "want", src.Digest)
	} else if !errors.Is(err, os.ErrNotExist) {
		r.log.Warn("cached image unusable; downloading it again", "url", src.URL, "err", err)
	}
	if err := r.download(ctx, src, dir); err != nil {
		return nil, err
	}
	return loadImage(dir)
}

// imageDir is where the image at url (without fragment) is cached.
func (r *Runtime) imageDir(url string) string {
	return filepath.Join(r.cacheDir, fetch.SHA256([]byte(url)))
}

// loadImage reads the unpacked image in dir.
func loadImage(dir string) (*image, error) {
	d, err := os.ReadFile(filepath.Join(dir, fileDigest))
	if err != nil {
		return nil, err
	}
	img := &image{dir: dir, kernel: filepath.Join(dir, fileKernel), digest: strings.TrimSpace(string(d))}
	if img.header, err = readKernelHeader(img.kernel); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, fileInitrd)); err == nil {
		img.initrd = filepath.Join(dir, fileInitrd)
	}
	if b, err := os.ReadFile(filepath.Join(dir, fileCmdline)); err == nil {
		img.cmdline = strings.Join(strings.Fields(string(b)), " ")
	}
	return img, nil
}

// download fetches the archive at src, checks it and unpacks it into dir
// (replacing what is there).
func (r *Runtime) download(ctx context.Context, src imageSource, dir string) error {
	t0 := time.Now()
	r.mu.Lock()
	r.downloads++
	r.mu.Unlock()
	limit := r.cfg.MaxImageBytes
	tmp, err := os.CreateTemp(r.cacheDir, ".download-*")
	if err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	f := fetch.Fetcher{Client: r.cfg.HTTPClient, MaxBytes: limit, What: "image", Policy: r.cfg.Policy}
	n, digest, err := f.Get(ctx, src, tmp)
	if err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	stage, err := os.MkdirTemp(r.cacheDir, ".unpack-*")
	if err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	defer os.RemoveAll(stage)
	if err := unpack(tmp, stage, limit); err != nil {
		return fmt.Errorf("image %s: %w", src.URL, err)
	}
	if err := os.WriteFile(filepath.Join(stage, fileDigest), []byte(digest+"\n"), 0o600); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	// Replace the cached image: running machines have read theirs already.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	if err := os.Rename(stage, dir); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	r.log.Info("downloaded image", "url", src.URL, "sha256", digest, "bytes", n, "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// unpack extracts the image files of the .tar.gz read from rd into dir:
// kernel, initrd (from the first of initrdNames present) and cmdline.
// Other entries are skipped; the files taken must be regular files, and
// together at most limit bytes.
func unpack(rd io.Reader, dir string, limit int64) error {
	zr, err := gzip.NewReader(rd)
	if err != nil {
		return fmt.Errorf("not a .tar.gz: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var total int64
	found := map[string]bool{}
	initrdRank := len(initrdNames)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "/"))
		var target string
		switch {
		case name == fileKernel:
			target = fileKernel
		case name == fileCmdline:
			target = fileCmdline
		default:
			rank := -1
			for i, n := range initrdNames {
				if name == n {
					rank = i
				}
			}
			if rank < 0 {
				continue // not a file of ours
			}
			if rank > initrdRank {
				continue // a preferred initrd came first
			}
			initrdRank = rank
			target = fileInitrd
		}
		if hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("archive entry %q is not a regular file", hdr.Name)
		}
		if found[name] {
			return fmt.Errorf("archive holds %q twice", name)
		}
		found[name] = true
		if target == fileCmdline && hdr.Size > maxCmdlineFile {
			return fmt.Errorf("cmdline is %d bytes, over %d", hdr.Size, maxCmdlineFile)
		}
		if hdr.Size < 0 || total+hdr.Size > limit {
			return fmt.Errorf("archive unpacks to more than %d bytes", limit)
		}
		f, err := os.OpenFile(filepath.Join(dir, target), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		n, err := io.Copy(f, io.LimitReader(tr, hdr.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("unpack %s: %w", name, err)
		}
		total += n
	}
	if !found[fileKernel] {
		return errors.New("archive holds no kernel")
	}
	return nil
}
