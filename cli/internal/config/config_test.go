package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
)

func TestSaveLoadRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "thicket")
	if c, err := Load(dir); c != nil || err != nil {
		t.Fatalf("Load of a missing file: %+v, %v", c, err)
	}
	want := &Credentials{Server: "http://r:10000", Session: api.Session{Username: "Admin", Role: "admin", Token: "a", RefreshToken: "r",
		ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}}
	if err := Save(dir, want); err != nil {
		t.Fatal(err)
	}
	// The session's fields sit beside the server, as they always have.
	file := `{
  "server": "http://r:10000",
  "username": "Admin",
  "role": "admin",
  "token": "a",
  "refresh_token": "r",
  "expires_at": "2030-01-02T03:04:05Z"
}
`
	if b, _ := os.ReadFile(Path(dir)); string(b) != file {
		t.Errorf("file:\n%s\nwant:\n%s", b, file)
	}
	for path, mode := range map[string]os.FileMode{dir: 0o700, Path(dir): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *want {
		t.Errorf("Load: %+v, want %+v", got, want)
	}
	// Saving again replaces the file and leaves no temporary file behind.
	want.Token = "b"
	if err := Save(dir, want); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("config dir holds %d entries, want 1", len(entries))
	}
	if got, _ := Load(dir); got.Token != "b" {
		t.Errorf("token after second save: %q", got.Token)
	}
	if ok, err := Remove(dir); !ok || err != nil {
		t.Errorf("Remove: %v %v", ok, err)
	}
	if ok, err := Remove(dir); ok || err != nil {
		t.Errorf("second Remove: %v %v", ok, err)
	}
}

func TestLoadCorrupt(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(Path(dir), []byte("{"), 0o600)
	if _, err := Load(dir); err == nil {
		t.Error("Load of a corrupt file succeeded")
	}
}
