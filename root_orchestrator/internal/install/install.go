// Package install serves the bootstrap of other machines from thicket-root:
//
//	GET /install/worker.sh    attaches a worker (thicket-net + thicket-node)
//	GET /install/cluster.sh   starts a cluster (thicket-cluster) joined to this root
//	GET /download/<binary>-<os>-<arch>          a binary
//	GET /download/<binary>-<os>-<arch>.sha256   its checksum, in sha256sum format
//	GET /download/manifest.txt[.sig], manifest.crt  the signed manifest (manifest.go)
//
// The scripts are POSIX sh templates (sh/*.sh, embedded) with the root's
// external URL baked in: the request's Host unless Config.ExternalURL is set.
// They share sh/lib.sh (options, supervisor, systemd units, download and
// checksum), which scripts/getstarted.sh also contains: Render writes that
// file (go generate), and a test keeps it up to date.
//
// Binaries come from one directory: <binary>-<os>-<arch>, or for the root's
// own platform also a plain <binary> (so binaries installed side by side
// with thicket-root are served). Nothing here needs a token: the scripts and
// binaries hold no secrets; the tokens are given by the operator.
package install

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"
)

//go:generate go run ./gen ../../../scripts/getstarted.sh

//go:embed sh/*.sh
var shFS embed.FS

var templates = template.Must(template.New("").Option("missingkey=error").ParseFS(shFS, "sh/*.sh"))

// Binaries are the programs /download serves.
var Binaries = []string{"thicket", "thicket-cluster", "thicket-log-writer", "thicket-net", "thicket-node", "thicket-root"}

// Scripts are the scripts /install serves.
var Scripts = []string{"cluster.sh", "worker.sh"}

// Data is what the script templates see.
type Data struct {
	// RootURL is the root's URL without a trailing slash; empty for
	// getstarted.sh from a checkout.
	RootURL string
}

// Render returns the script name ("worker.sh", "cluster.sh",
// "getstarted.sh") for a root at rootURL.
func Render(name string, rootURL string) ([]byte, error) {
	if rootURL != "" {
		if err := checkURL(rootURL); err != nil {
			return nil, err
		}
	}
	if name != "getstarted.sh" && !slices.Contains(Scripts, name) {
		return nil, fmt.Errorf("no script %q", name)
	}
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, Data{RootURL: strings.TrimRight(rootURL, "/")}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// safeURL is what may go into a script between single quotes: no quotes,
// spaces, backslashes or shell expansions.
var safeURL = regexp.MustCompile(`^https?://[A-Za-z0-9.\-:\[\]]+(/[A-Za-z0-9._~\-/]*)?$`)

func checkURL(u string) error {
	if !safeURL.MatchString(u) {
		return fmt.Errorf("root URL %q: want http(s)://host[:port][/path] of letters, digits and .-_~:[]/", u)
	}
	if _, err := url.Parse(u); err != nil {
		return fmt.Errorf("root URL %q: %w", u, err)
	}
	return nil
}

// Config configures the handlers.
type Config struct {
	// DownloadsDir holds the binaries; empty: the directory of the running
	// executable.
	DownloadsDir string
	// ExternalURL is the root's URL as other machines reach it, baked into
	// the scripts; empty: http(s)://<Host of the request>.
	ExternalURL string
	Logger      *slog.Logger
}

// Handler serves /install/ and /download/.
type Handler struct {
	dir      string
	external string
	log      *slog.Logger

	mu     sync.Mutex
	sums   map[string]*sumEntry
	signer *Signer
}

type sumEntry struct {
	mu    sync.Mutex // held while computing
	size  int64
	mtime time.Time
	sum   string
}

// New checks the configuration and returns the handler.
func New(cfg Config) (*Handler, error) {
	h := &Handler{dir: cfg.DownloadsDir, external: strings.TrimRight(cfg.ExternalURL, "/"), log: cfg.Logger, sums: map[string]*sumEntry{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.external != "" {
		if err := checkURL(h.external); err != nil {
			return nil, fmt.Errorf("external URL: %w", err)
		}
	}
	if h.dir == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("downloads dir: the executable's directory: %w", err)
		}
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		h.dir = filepath.Dir(exe)
	}
	abs, err := filepath.Abs(h.dir)
	if err != nil {
		return nil, fmt.Errorf("downloads dir: %w", err)
	}
	h.dir = abs
	if fi, err := os.Stat(h.dir); err != nil {
		return nil, fmt.Errorf("downloads dir: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("downloads dir %s: not a directory", h.dir)
	}
	return h, nil
}

// Dir is the directory binaries are served from.
func (h *Handler) Dir() string { return h.dir }

func notFound(w http.ResponseWriter, format string, args ...any) {
	http.Error(w, fmt.Sprintf(format, args...), http.StatusNotFound)
}

// Scripts serves GET /install/<script>.
func (h *Handler) Scripts() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/install/")
		if !ok || !slices.Contains(Scripts, name) {
			notFound(w, "no such script %q; this root serves /install/%s", name, strings.Join(Scripts, ", /install/"))
			return
		}
		root := h.external
		if root == "" {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			root = scheme + "://" + r.Host
		}
		body, err := Render(name, root)
		if err != nil {
			http.Error(w, "cannot build the script: "+err.Error()+"; start thicket-root with --external-url", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/x-shellscript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	})
}

// platformPart is an os or arch as Go names them.
var platformPart = regexp.MustCompile(`^[a-z0-9]+$`)

// resolve maps a download name "<binary>-<os>-<arch>" to a file, or
// explains why it cannot.
func (h *Handler) resolve(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("invalid download name %q", name)
	}
	parts := strings.Split(name, "-")
	if len(parts) < 3 {
		return "", fmt.Errorf("invalid download name %q: want <binary>-<os>-<arch>, e.g. thicket-node-linux-amd64", name)
	}
	goos, goarch := parts[len(parts)-2], parts[len(parts)-1]
	bin := strings.Join(parts[:len(parts)-2], "-")
	if !slices.Contains(Binaries, bin) {
		return "", fmt.Errorf("unknown binary %q in %q: this root serves %s (as <binary>-<os>-<arch>)", bin, name, strings.Join(Binaries, ", "))
	}
	if !platformPart.MatchString(goos) || !platformPart.MatchString(goarch) {
		return "", fmt.Errorf("invalid platform %s-%s in %q", goos, goarch, name)
	}
	candidates := []string{filepath.Join(h.dir, name)}
	if goos == runtime.GOOS && goarch == runtime.GOARCH {
		candidates = append(candidates, filepath.Join(h.dir, bin))
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
			return c, nil
		}
	}
	return "", fmt.Errorf("%s for %s/%s is not available on this root: put %s into its downloads directory (thicket-root --downloads-dir)", bin, goos, goarch, name)
}

// Downloads serves GET /download/<binary>-<os>-<arch>[.sha256].
func (h *Handler) Downloads() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _ := strings.CutPrefix(r.URL.Path, "/download/")
		if h.serveManifest(w, r, name) {
			return
		}
		base, wantSum := strings.CutSuffix(name, ".sha256")
		file, err := h.resolve(base)
		if err != nil {
			notFound(w, "%s", err)
			return
		}
		if wantSum {
			sum, _, err := h.checksum(file)
			if err != nil {
				h.log.Warn("checksum of a download", "file", file, "err", err)
				http.Error(w, "cannot read "+base, http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			io.WriteString(w, sum+"  "+base+"\n")
			return
		}
		f, err := os.Open(file)
		if err != nil {
			notFound(w, "%s: %v", base, err)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			http.Error(w, "cannot read "+base, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="`+base+`"`)
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, base, fi.ModTime(), f)
	})
}

// checksum returns the file's SHA-256 in hex and its size, computed once
// per size and modification time.
func (h *Handler) checksum(file string) (string, int64, error) {
	h.mu.Lock()
	e := h.sums[file]
	if e == nil {
		e = &sumEntry{}
		h.sums[file] = e
	}
	h.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	f, err := os.Open(file)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if e.sum != "" && e.size == fi.Size() && e.mtime.Equal(fi.ModTime()) {
		return e.sum, e.size, nil
	}
	hash := sha256.New()
	if _, err := io.Copy(hash, f); err != nil {
		return "", 0, err
	}
	e.sum, e.size, e.mtime = hex.EncodeToString(hash.Sum(nil)), fi.Size(), fi.ModTime()
	return e.sum, e.size, nil
}
