package testimage

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// WasmAppPackage is the import path of the WebAssembly test module.
const WasmAppPackage = "github.com/thicket-edge/thicket/node_engine/testimage/wasmapp"

// WasmAppName is the file name under which WasmServer serves the test
// module.
const WasmAppName = "wasmapp.wasm"

// BuildWasm compiles the WebAssembly test module (GOOS=wasip1 GOARCH=wasm,
// WASI preview 1) into dir and returns its path. Like Build, it runs the go
// command from the current directory, which must be inside a module that
// needs this repository's source.
func BuildWasm(ctx context.Context, dir string) (string, error) {
	goBin, err := goCommand()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, WasmAppName)
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, WasmAppPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testimage: go build (wasip1) %s: %w\n%s", WasmAppPackage, err, msg)
	}
	return out, nil
}

var wasmModule struct {
	sync.Mutex
	data []byte
}

// WasmModule returns the WebAssembly test module, compiled once per process.
func WasmModule(ctx context.Context) ([]byte, error) {
	wasmModule.Lock()
	defer wasmModule.Unlock()
	if wasmModule.data != nil {
		return wasmModule.data, nil
	}
	dir, err := os.MkdirTemp("", "thicket-wasmapp-")
	if err != nil {
		return nil, fmt.Errorf("testimage: %w", err)
	}
	defer os.RemoveAll(dir)
	p, err := BuildWasm(ctx, dir)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("testimage: %w", err)
	}
	wasmModule.data = data
	return data, nil
}

// WasmServer serves WebAssembly modules over plain HTTP on 127.0.0.1 and
// counts the requests for each.
type WasmServer struct {
	// URL is the server's base URL, "http://127.0.0.1:<port>".
	URL string
	srv *httptest.Server

	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
}

// NewWasmServer starts a server holding the test module (WasmModule) as
// /wasmapp.wasm.
func NewWasmServer(ctx context.Context) (*WasmServer, error) {
	data, err := WasmModule(ctx)
	if err != nil {
		return nil, err
	}
	s := &WasmServer{files: map[string][]byte{}, hits: map[string]int{}}
	s.files[WasmAppName] = data
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s, nil
}

// ServeWasm starts a WasmServer for the test and closes it when the test
// ends.
func ServeWasm(t testing.TB) *WasmServer {
	t.Helper()
	s, err := NewWasmServer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *WasmServer) serve(w http.ResponseWriter, req *http.Request) {
	name := strings.TrimPrefix(req.URL.Path, "/")
	s.mu.Lock()
	s.hits[name]++
	data, ok := s.files[name]
	s.mu.Unlock()
	if !ok || req.Method != http.MethodGet {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "application/wasm")
	_, _ = w.Write(data)
}

// Add serves data as /<name> and returns its URL.
func (s *WasmServer) Add(name string, data []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[name] = data
	return s.URL + "/" + name
}

// AppURL is the URL of the test module.
func (s *WasmServer) AppURL() string { return s.URL + "/" + WasmAppName }

// Module returns the content served as /<name>.
func (s *WasmServer) Module(name string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files[name]
}

// Requests is the number of requests made for /<name> so far.
func (s *WasmServer) Requests(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[name]
}

// Close stops the server.
func (s *WasmServer) Close() { s.srv.Close() }
