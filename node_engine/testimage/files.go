package testimage

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// FileServer serves files from memory over plain HTTP on 127.0.0.1 and
// counts the requests for each: images for runtimes that download their
// code (unikernel archives, modules).
type FileServer struct {
	// URL is the server's base URL, "http://127.0.0.1:<port>".
	URL string
	srv *httptest.Server

	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
}

// NewFileServer starts an empty FileServer.
func NewFileServer() *FileServer {
	s := &FileServer{files: map[string][]byte{}, hits: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// ServeFiles starts a FileServer for the test and closes it when the test
// ends.
func ServeFiles(t testing.TB) *FileServer {
	t.Helper()
	s := NewFileServer()
	t.Cleanup(s.Close)
	return s
}

// NewUnikernelServer starts a FileServer holding the unikernel test image
// (UnikernelImage) as /unikernel.tar.gz (UnikernelImageName), and the image
// without its cmdline file (UnikernelImageNoCmdline) as
// /unikernel-nocmdline.tar.gz (UnikernelNoCmdlineImageName).
func NewUnikernelServer(ctx context.Context) (*FileServer, error) {
	data, err := UnikernelImage(ctx)
	if err != nil {
		return nil, err
	}
	noCmdline, err := UnikernelImageNoCmdline(ctx)
	if err != nil {
		return nil, err
	}
	s := NewFileServer()
	s.Add(UnikernelImageName, data)
	s.Add(UnikernelNoCmdlineImageName, noCmdline)
	return s, nil
}

func (s *FileServer) serve(w http.ResponseWriter, req *http.Request) {
	name := strings.TrimPrefix(req.URL.Path, "/")
	s.mu.Lock()
	s.hits[name]++
	data, ok := s.files[name]
	s.mu.Unlock()
	if !ok || req.Method != http.MethodGet {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(data)
}

// Add serves data as /<name> and returns its URL.
func (s *FileServer) Add(name string, data []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[name] = data
	return s.URL + "/" + name
}

// File returns the content served as /<name> (nil if none).
func (s *FileServer) File(name string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files[name]
}

// Requests is the number of requests made for /<name> so far.
func (s *FileServer) Requests(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[name]
}

// Close stops the server.
func (s *FileServer) Close() { s.srv.Close() }
