package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSaveLoadRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "thicket")
	if c, err := Load(dir); c != nil || err != nil {
		t.Fatalf("Load of a missing file: %+v, %v", c, err)
	}
	want := &Credentials{Server: "http://r:10000", Username: "Admin", Role: "admin", Token: "a", RefreshToken: "r",
		ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := Save(dir, want); err != nil {
		t.Fatal(err)
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

func TestExpired(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		c    Credentials
		want bool
	}{
		{"no token", Credentials{}, true},
		{"unknown expiry", Credentials{Token: "t"}, false},
		{"valid", Credentials{Token: "t", ExpiresAt: now.Add(10 * time.Minute)}, false},
		{"about to expire", Credentials{Token: "t", ExpiresAt: now.Add(10 * time.Second)}, true},
		{"expired", Credentials{Token: "t", ExpiresAt: now.Add(-time.Minute)}, true},
	} {
		if got := tc.c.Expired(now); got != tc.want {
			t.Errorf("%s: Expired = %v, want %v", tc.name, got, tc.want)
		}
	}
}
