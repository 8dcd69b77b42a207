package install

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The signed manifest of the downloads:
//
//	GET /download/manifest.txt      one line per binary: <sha256> <size> <binary>-<os>-<arch>
//	GET /download/manifest.txt.sig  its Ed25519 signature (64 bytes, raw)
//	GET /download/manifest.crt      the signing key's certificate (PEM), issued by the root CA
//
// The install scripts check the certificate against the CA they pinned,
// the signature with the certified key, and every binary's size and
// SHA-256 against the manifest, so the binaries may come from a mirror
// nobody trusts (--download-url).
const (
	ManifestFile     = "manifest.txt"
	ManifestSigFile  = "manifest.txt.sig"
	ManifestCertFile = "manifest.crt"
	manifestHeader   = "# thicket download manifest v1\n"
)

// Signer signs the manifest: an Ed25519 key and its certificate (PEM),
// issued by the root CA for code signing.
type Signer struct {
	Key     ed25519.PrivateKey
	CertPEM []byte
}

// SetSigner makes the handler serve the signed manifest; nil: it serves
// none (a root without its CA's key), and says so.
func (h *Handler) SetSigner(s *Signer) {
	h.mu.Lock()
	h.signer = s
	h.mu.Unlock()
}

// Manifest lists the binaries in the downloads directory, sorted by name:
// <binary>-<os>-<arch> files, and plain <binary> files as the root's own
// platform unless a <binary>-<os>-<arch> file names it too.
func (h *Handler) Manifest() ([]byte, error) {
	entries, err := os.ReadDir(h.dir)
	if err != nil {
		return nil, fmt.Errorf("downloads dir: %w", err)
	}
	files := map[string]string{} // download name -> file
	for _, e := range entries {
		name := e.Name()
		if slices.Contains(Binaries, name) {
			alias := name + "-" + runtime.GOOS + "-" + runtime.GOARCH
			if _, ok := files[alias]; !ok {
				files[alias] = filepath.Join(h.dir, name)
			}
			continue
		}
		if _, err := h.resolve(name); err == nil {
			files[name] = filepath.Join(h.dir, name) // an explicit file wins over a plain one
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var b bytes.Buffer
	b.WriteString(manifestHeader)
	for _, n := range names {
		if fi, err := os.Stat(files[n]); err != nil || !fi.Mode().IsRegular() {
			continue // gone meanwhile, or a directory
		}
		sum, size, err := h.checksum(files[n])
		if err != nil {
			return nil, fmt.Errorf("download %s: %w", n, err)
		}
		fmt.Fprintf(&b, "%s %d %s\n", sum, size, n)
	}
	return b.Bytes(), nil
}

// errUnsigned is why a root without its CA's key serves no manifest.
var errUnsigned = errors.New("this root signs no download manifest: it serves HTTPS with the operator's certificate and has no CA key to certify a signing key; install with --allow-unsigned (checks each binary's SHA-256 over the pinned HTTPS connection only)")

// serveManifest serves one of the manifest's files; ok false if name is
// none of them.
func (h *Handler) serveManifest(w http.ResponseWriter, r *http.Request, name string) (ok bool) {
	if name != ManifestFile && name != ManifestSigFile && name != ManifestCertFile {
		return false
	}
	h.mu.Lock()
	s := h.signer
	h.mu.Unlock()
	if s == nil {
		notFound(w, "%s", errUnsigned)
		return true
	}
	w.Header().Set("Cache-Control", "no-cache")
	if name == ManifestCertFile {
		w.Header().Set("Content-Type", "application/x-pem-file")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(s.CertPEM))
		return true
	}
	// Signed at each request from the cached checksums; Ed25519 signatures
	// are deterministic, so the manifest and its signature fetched one
	// after the other match while the directory is unchanged.
	m, err := h.Manifest()
	if err != nil {
		h.log.Warn("download manifest", "err", err)
		http.Error(w, "cannot list the downloads", http.StatusInternalServerError)
		return true
	}
	body, ctype := m, "text/plain; charset=utf-8"
	if name == ManifestSigFile {
		body, ctype = ed25519.Sign(s.Key, m), "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	return true
}

// VerifyManifest checks manifest against its signature with the key pub;
// for tests and tools that read a manifest in Go.
func VerifyManifest(pub ed25519.PublicKey, manifest, sig []byte) error {
	if !ed25519.Verify(pub, manifest, sig) {
		return errors.New("the download manifest's signature does not verify")
	}
	if !strings.HasPrefix(string(manifest), manifestHeader) {
		return errors.New("not a thicket download manifest")
	}
	return nil
}
