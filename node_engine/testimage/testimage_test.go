package testimage_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/thicket-edge/thicket/node_engine/testimage"
)

func TestPushTestApp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	reg := testimage.Serve(t)
	ref, err := reg.PushTestApp(ctx, "testapp", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if want := reg.Addr + "/testapp:v1"; ref != want || !strings.HasPrefix(ref, "127.0.0.1:") {
		t.Fatalf("ref = %q, want %q", ref, want)
	}
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(tag, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pull back: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/testapp" {
		t.Errorf("config = %+v", cfg.Config)
	}
	if !contains(cfg.Config.Env, "PORT=8080") {
		t.Errorf("env = %v", cfg.Config.Env)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v", len(layers), err)
	}
	// The binary is built once per process.
	b1, _ := testimage.Binary(ctx)
	b2, _ := testimage.Binary(ctx)
	if b1 != b2 {
		t.Errorf("Binary built twice: %s, %s", b1, b2)
	}
}

// The test program's modes, run directly.
func TestAppModes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, err := testimage.Binary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"exit", "3"}, 3, "exiting with code 3\n"},
		{[]string{"exit", "0"}, 0, "exiting with code 0\n"},
		{[]string{"print", "3"}, 0, "line 1\nline 2\nline 3\n"},
		{[]string{"bogus"}, 64, ""},
	} {
		cmd := exec.CommandContext(ctx, bin, tc.args...)
		out, _ := cmd.Output()
		if code := cmd.ProcessState.ExitCode(); code != tc.code || string(out) != tc.out {
			t.Errorf("testapp %v: code %d, output %q; want %d, %q", tc.args, code, out, tc.code, tc.out)
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
