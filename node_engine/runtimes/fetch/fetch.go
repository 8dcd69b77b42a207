// Package fetch downloads the code of runtimes that take it by URL (wasm
// modules, unikernel images): an http(s) URL, optionally pinned to its
// content by a fragment "#sha256=<64 hex digits>", read up to a size limit
// while its digest is computed.
package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Source is a parsed code URL.
type Source struct {
	// URL is the URL without its fragment: what is downloaded, and what a
	// cache is keyed by.
	URL string
	// Path is the URL's path.
	Path string
	// Host is the URL's host.
	Host string
	// Digest is the wanted hex SHA-256 of the content (lower case), "" if
	// the URL is not pinned.
	Digest string
}

// Parse parses s, an http or https URL with an optional fragment
// sha256=<64 hex digits>. what names the content in errors ("module",
// "image").
func Parse(what, s string) (Source, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Source{}, fmt.Errorf("%s URL %q: %w", what, s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return Source{}, fmt.Errorf("%s URL %q: want an http or https URL", what, s)
	}
	var src Source
	if u.Fragment != "" {
		hexDigest, ok := strings.CutPrefix(u.Fragment, "sha256=")
		if b, err := hex.DecodeString(hexDigest); !ok || err != nil || len(b) != sha256.Size {
			return Source{}, fmt.Errorf("%s URL %q: fragment must be sha256=<64 hex digits>", what, s)
		}
		src.Digest = strings.ToLower(hexDigest)
	}
	u.Fragment, u.RawFragment = "", ""
	src.URL, src.Path, src.Host = u.String(), u.Path, u.Host
	return src, nil
}

// Fetcher downloads sources.
type Fetcher struct {
	// Client makes the requests (http.DefaultClient if nil).
	Client *http.Client
	// MaxBytes is the most a download may be; a larger one fails.
	MaxBytes int64
	// What names the content in errors ("module", "image").
	What string
	// Policy, if set, is checked before the download (Policy.Check) and
	// bounds concurrent downloads; Client should then be Policy.Client's,
	// which checks every connection's address too.
	Policy *Policy
}

// Get downloads src into w, at most f.MaxBytes, and returns the number of
// bytes written and their hex SHA-256. It fails on a status other than 200
// OK, a body over the limit, and content that does not match src's pin; w
// may then hold part of the body.
func (f Fetcher) Get(ctx context.Context, src Source, w io.Writer) (int64, string, error) {
	if f.Policy != nil {
		if err := f.Policy.Check(ctx, f.What, src); err != nil {
			return 0, "", err
		}
		release, err := f.Policy.acquire(ctx)
		if err != nil {
			return 0, "", fmt.Errorf("fetch %s %s: %w", f.What, src.URL, err)
		}
		defer release()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return 0, "", fmt.Errorf("fetch %s %s: %w", f.What, src.URL, err)
	}
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		// The client's error names the URL already.
		return 0, "", fmt.Errorf("fetch %s: %w", f.What, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("fetch %s %s: %s", f.What, src.URL, resp.Status)
	}
	limit := f.MaxBytes
	if resp.ContentLength > limit {
		return 0, "", fmt.Errorf("fetch %s %s: %d bytes, over the limit of %d bytes", f.What, src.URL, resp.ContentLength, limit)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return n, "", fmt.Errorf("fetch %s %s: %w", f.What, src.URL, err)
	}
	if n > limit {
		return n, "", fmt.Errorf("fetch %s %s: over the limit of %d bytes", f.What, src.URL, limit)
	}
	digest := hex.EncodeToString(h.Sum(nil))
	if src.Digest != "" && digest != src.Digest {
		return n, "", fmt.Errorf("%s %s has sha256 %s, want %s (from the URL's fragment)", f.What, src.URL, digest, src.Digest)
	}
	return n, digest, nil
}

// SHA256 is the hex SHA-256 of b.
func SHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
