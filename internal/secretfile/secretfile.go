// Package secretfile reads secrets (tokens, passwords, URLs with
// credentials) from files, so that they stay out of process arguments (ps,
// /proc/<pid>/cmdline) and shell history. Every daemon flag that carries a
// secret has a --<name>-file twin resolved here.
package secretfile

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
)

// Read returns the secret in the file at path without its trailing line
// break. An unreadable or empty file is an error that names the file (never
// the content).
func Read(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the secret file: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}

// Flag is one secret given either directly (Name, e.g. "join-token", from
// --Name or the environment variable Env) or as a file (--Name-file).
type Flag struct {
	Name  string // flag name without dashes, e.g. "join-token"
	Env   string // environment variable of the direct value, e.g. THICKET_JOIN_TOKEN; "" when none
	Value string // the direct value
	File  string // the path from --Name-file; "" when not given
}

// ErrBoth is returned by Resolve when a secret is given directly and as a
// file.
var ErrBoth = errors.New("given both directly and as a file")

// Resolve returns the secret: from the file when one is named, else the
// direct value ("" when neither is given). Both at once is an error. A value
// that came from the command line rather than the environment is logged as a
// warning (it shows in the process list); the secret itself is never logged.
func (f Flag) Resolve(log *slog.Logger) (string, error) {
	switch {
	case f.Value != "" && f.File != "":
		return "", fmt.Errorf("--%s and --%s-file: %w", f.Name, f.Name, ErrBoth)
	case f.File != "":
		s, err := Read(f.File)
		if err != nil {
			return "", fmt.Errorf("--%s-file: %w", f.Name, err)
		}
		return s, nil
	}
	if f.Value != "" && (f.Env == "" || os.Getenv(f.Env) != f.Value) && log != nil {
		log.Warn("a secret was given on the command line, where every user of this machine can read it (ps); give it as a file instead",
			"flag", "--"+f.Name, "instead", "--"+f.Name+"-file")
	}
	return f.Value, nil
}

// LoadOrCreate returns the secret in the file at path, creating the file
// (mode 0600, atomically) with prefix and 32 random bytes when it does not
// exist yet.
func LoadOrCreate(path, prefix string) (string, error) {
	s, err := Read(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	s = prefix + base64.RawURLEncoding.EncodeToString(b[:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return s, nil
}

// Equal reports whether a and b are the same secret, in time that does not
// depend on where they differ. An empty secret equals nothing.
func Equal(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
