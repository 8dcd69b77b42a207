// Package joblist reads a service's job list from a URL for the root
// (collaborative workloads): one job per line, fetched once, under the
// same rules as the code nodes fetch (node_engine/runtimes/fetch): public
// addresses only unless the operator allows networks, checked at every
// connection, an optional #sha256= pin, a size and time limit.
package joblist

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/node_engine/runtimes/fetch"
)

const (
	// MaxBytes bounds a list: 10,000 jobs of 100 bytes.
	MaxBytes = 1 << 20
	// Timeout bounds a fetch.
	Timeout = 15 * time.Second
)

// ErrFetch marks a list that could not be fetched (as opposed to one that
// was fetched and is invalid).
var ErrFetch = errors.New("cannot fetch the job list")

// Reader fetches job lists.
type Reader struct {
	policy *fetch.Policy
}

// New returns a reader that fetches from public addresses and the given
// networks.
func New(networks []netip.Prefix) *Reader {
	return &Reader{policy: &fetch.Policy{Networks: networks, AllowUnpinned: true, MaxConcurrent: 2}}
}

// Read fetches the list at rawURL: one job per line, surrounding white
// space trimmed, blank lines skipped (as thicket jobs set -f reads a
// file). The jobs are not validated here (sla.ValidateJobs is the
// caller's, so that its errors name the list's lines the same way).
func (r *Reader) Read(ctx context.Context, rawURL string) ([]string, error) {
	src, err := fetch.Parse("job list", rawURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	var buf bytes.Buffer
	f := fetch.Fetcher{Client: r.policy.Client(Timeout), MaxBytes: MaxBytes, What: "job list", Policy: r.policy}
	if _, _, err := f.Get(ctx, src, &buf); err != nil {
		// The policy's words are the node's; the rules are the same.
		msg := strings.NewReplacer("the node's code policy", "the root's job list policy",
			"thicket-node --code-allow-net", "thicket-root --jobs-allow-net").Replace(err.Error())
		return nil, fmt.Errorf("%w: %s", ErrFetch, msg)
	}
	return Lines(buf.Bytes())
}

// Lines splits a list into jobs: one per line, trimmed, blank lines
// skipped. (sla.ValidateJobs judges the names; a line beyond the
// scanner's 64 KiB fails here.)
func Lines(b []byte) ([]string, error) {
	jobs := []string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			jobs = append(jobs, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("the job list: %w (a job name is at most %d bytes)", err, sla.MaxJobName)
	}
	return jobs, nil
}
