package runtimes

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DefaultStateDir is where runtimes keep their state (logs, caches,
// instances) unless configured otherwise.
const DefaultStateDir = "/var/lib/thicket/node"

// maxFileName bounds the instance keys FileName keeps as they are.
const maxFileName = 64

// Defaults fills in the options every runtime has: an empty *nodeName
// becomes the host name, an empty *stateDir DefaultStateDir, and the state
// directory is made absolute.
func Defaults(nodeName, stateDir *string) error {
	if *nodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node name: %w", err)
		}
		*nodeName = h
	}
	if *stateDir == "" {
		*stateDir = DefaultStateDir
	}
	abs, err := filepath.Abs(*stateDir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	*stateDir = abs
	return nil
}

// FileName is a file name for instance key: key itself if it is a safe
// file name of at most 64 characters ([A-Za-z0-9._-], not "." or ".."),
// else "k-" and 32 hex digits of its SHA-256. Runtimes name an instance's
// files and directories by it.
func FileName(key string) string {
	safe := key != "" && key != "." && key != ".." && len(key) <= maxFileName
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			safe = false
			break
		}
	}
	if safe {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "k-" + hex.EncodeToString(sum[:])[:32]
}

// WriteFileAtomic writes data to file (mode 0600) through a temporary file
// in the same directory and a rename, so that a crash never leaves a
// partial file.
func WriteFileAtomic(file string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(file), ".tmp-"+filepath.Base(file)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// ReadTail returns at most n bytes of the end of file, and whether it
// left anything out before them. A missing file is an error that
// errors.Is os.ErrNotExist.
func ReadTail(file string, n int64) ([]byte, bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	off := max(fi.Size()-max(n, 0), 0)
	buf := make([]byte, fi.Size()-off)
	m, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	return buf[:m], off > 0, nil
}

// DropPartialLine drops the first line of buf, cut by ReadTail, unless it
// is all there is.
func DropPartialLine(buf []byte) []byte {
	if i := bytes.IndexByte(buf, '\n'); i >= 0 && i+1 < len(buf) {
		return buf[i+1:]
	}
	return buf
}

// LogTail is at most maxBytes of the end of the log file, starting at a
// line boundary when cut: Runtime.Logs of runtimes that log to a file. A
// missing file is an error that errors.Is os.ErrNotExist.
//
// A log bounded by TrimLog continues its rotated part: when the file holds
// less than maxBytes, the tail is completed from that part.
func LogTail(file string, maxBytes int) (string, error) {
	buf, mid, err := tailAt(file, maxBytes)
	if err != nil {
		return "", err
	}
	if rest := maxBytes - len(buf); !mid && rest > 0 {
		if prev, pmid, err := tailAt(rotated(file), rest); err == nil && len(prev) > 0 {
			buf, mid = append(prev, buf...), pmid
		}
	}
	if mid {
		buf = DropPartialLine(buf)
	}
	return string(buf), nil
}

// tailAt reads at most n bytes of the end of file; mid says they start in
// the middle of a line (a byte more is read to tell).
func tailAt(file string, n int) (buf []byte, mid bool, err error) {
	if n <= 0 {
		_, err := os.Stat(file)
		return nil, false, err
	}
	buf, cut, err := ReadTail(file, int64(n)+1)
	if err != nil || !cut && len(buf) <= n {
		return buf, false, err
	}
	return buf[1:], buf[0] != '\n', nil
}
