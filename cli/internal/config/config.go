// Package config keeps the CLI's session: the server it logged in to, the
// user and the tokens, in <dir>/credentials.json (0600, directory 0700).
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/thicket-edge/thicket/api"
)

// FileName is the credentials file in the config directory.
const FileName = "credentials.json"

// Credentials are what `thicket login` saves: the server and the session
// (whose fields sit beside Server in the file).
type Credentials struct {
	Server string `json:"server"`
	// CA (PEM) or CAPin is the CA the server's certificate must be issued
	// by (login's --ca-file or --ca-pin); neither: the system's roots.
	CA    string `json:"ca,omitempty"`
	CAPin string `json:"ca_pin,omitempty"`
	api.Session
}

// DefaultDir is the config directory when none is given:
// os.UserConfigDir()/thicket ($XDG_CONFIG_HOME/thicket or ~/.config/thicket).
func DefaultDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory (set --config or $THICKET_CONFIG): %w", err)
	}
	return filepath.Join(d, "thicket"), nil
}

// Path is the credentials file in dir.
func Path(dir string) string { return filepath.Join(dir, FileName) }

// Load reads the credentials in dir; (nil, nil) when there are none.
func Load(dir string) (*Credentials, error) {
	b, err := os.ReadFile(Path(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("read credentials %s: %w (thicket logout removes it)", Path(dir), err)
	}
	return &c, nil
}

// Save writes the credentials to dir atomically with mode 0600, creating
// dir with mode 0700 when it does not exist.
func Save(dir string, c *Credentials) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	f, err := os.CreateTemp(dir, ".credentials-*")
	if err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := os.Rename(f.Name(), Path(dir)); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	return nil
}

// Remove deletes the credentials in dir and reports whether there were any.
func Remove(dir string) (bool, error) {
	err := os.Remove(Path(dir))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove credentials: %w", err)
	}
	return true, nil
}
