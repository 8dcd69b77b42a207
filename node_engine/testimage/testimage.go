// Package testimage gives tests a small OCI image and a registry to pull it
// from, since no public registry is reachable: the test program
// (testimage/testapp, a static Go binary) is compiled, put alone in a layer
// at /testapp, and pushed to an in-process registry on 127.0.0.1 that
// containerd pulls from over plain HTTP.
//
//	reg := testimage.Serve(t)
//	ref, err := reg.PushTestApp(ctx, "testapp", "v1") // "127.0.0.1:<port>/testapp:v1"
//	// pull ref with reg.Host() among the insecure registries
//
// See testapp's documentation for its modes (HTTP server, exit N, ...).
package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// AppPackage is the import path of the test program.
const AppPackage = "github.com/thicket-edge/thicket/node_engine/testimage/testapp"

// Defaults of the image's configuration.
const (
	// AppPath is where the binary is in the image; it is the entrypoint.
	AppPath = "/testapp"
	// DefaultPort is the port the test program serves on unless PORT is set.
	DefaultPort = 8080
)

// Build compiles the test program for Linux (static, CGO_ENABLED=0, the
// host's architecture) into dir and returns the binary's path. It runs the go
// command from the current directory, which must be inside a module that
// needs this repository's source (as every test importing this package has).
func Build(ctx context.Context, dir string) (string, error) {
	goBin, err := goCommand()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "testapp")
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, AppPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testimage: go build %s: %w\n%s", AppPackage, err, msg)
	}
	return out, nil
}

// goCommand finds the go command: on PATH, else in $GOROOT/bin.
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	for _, root := range []string{os.Getenv("GOROOT"), "/usr/local/go"} {
		if root == "" {
			continue
		}
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("testimage: the go command is not on PATH")
}

var binary struct {
	sync.Mutex
	path string
}

// Binary returns the test program compiled once per process (into a
// temporary directory that lives as long as the process).
func Binary(ctx context.Context) (string, error) {
	binary.Lock()
	defer binary.Unlock()
	if binary.path != "" {
		return binary.path, nil
	}
	dir, err := os.MkdirTemp("", "thicket-testapp-")
	if err != nil {
		return "", fmt.Errorf("testimage: %w", err)
	}
	p, err := Build(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	binary.path = p
	return p, nil
}

// Image returns the test image: one layer holding the test program at
// /testapp, entrypoint ["/testapp"], PORT=8080, linux on the host's
// architecture, OCI media types.
func Image(ctx context.Context) (v1.Image, error) {
	bin, err := Binary(ctx)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("testimage: %w", err)
	}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	hdr := &tar.Header{
		Name:     AppPath[1:],
		Mode:     0o755,
		Size:     int64(len(data)),
		Typeflag: tar.TypeReg,
		ModTime:  time.Unix(0, 0),
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("testimage: layer: %w", err)
	}
	if _, err := tw.Write(data); err != nil {
		return nil, fmt.Errorf("testimage: layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("testimage: layer: %w", err)
	}
	tarBytes := tarBuf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("testimage: layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("testimage: image: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("testimage: image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = runtime.GOARCH
	cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cfg.Config.Entrypoint = []string{AppPath}
	cfg.Config.Cmd = nil
	cfg.Config.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		fmt.Sprintf("PORT=%d", DefaultPort),
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("testimage: image config: %w", err)
	}
	return img, nil
}

// Registry is an in-process OCI registry (go-containerregistry's) serving
// plain HTTP on 127.0.0.1, keeping images in memory.
type Registry struct {
	// Addr is the registry's host:port, e.g. "127.0.0.1:41234": give it to
	// the runtime as an insecure registry.
	Addr string
	srv  *http.Server
	done chan struct{}
}

// StartRegistry starts a registry listening on addr ("127.0.0.1:0" if
// empty, a free port).
func StartRegistry(addr string) (*Registry, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testimage: registry: %w", err)
	}
	r := &Registry{
		Addr: ln.Addr().String(),
		srv: &http.Server{
			Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0))),
			ReadHeaderTimeout: 10 * time.Second,
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(r.done)
		_ = r.srv.Serve(ln)
	}()
	return r, nil
}

// Serve starts a registry for the test and closes it when the test ends.
func Serve(t testing.TB) *Registry {
	t.Helper()
	r, err := StartRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// Host is the registry's host:port (the same as Addr).
func (r *Registry) Host() string { return r.Addr }

// Close stops the registry at once, closing open connections.
func (r *Registry) Close() error {
	err := r.srv.Close()
	<-r.done
	return err
}

// Push pushes img as <name>:<tag> and returns its reference,
// "127.0.0.1:<port>/<name>:<tag>".
func (r *Registry) Push(ctx context.Context, img v1.Image, repo, tag string) (string, error) {
	ref := r.Addr + "/" + repo + ":" + tag
	tagged, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return "", fmt.Errorf("testimage: %w", err)
	}
	if err := remote.Write(tagged, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("testimage: push %s: %w", ref, err)
	}
	return ref, nil
}

// PushTestApp pushes the test image (Image) as <name>:<tag> and returns its
// reference, "127.0.0.1:<port>/<name>:<tag>".
func (r *Registry) PushTestApp(ctx context.Context, repo, tag string) (string, error) {
	img, err := Image(ctx)
	if err != nil {
		return "", err
	}
	return r.Push(ctx, img, repo, tag)
}
