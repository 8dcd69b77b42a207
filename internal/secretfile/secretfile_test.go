package secretfile

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, path, want, err string
	}{
		{"plain", write("plain", "s3cret"), "s3cret", ""},
		{"trailing newline", write("nl", "s3cret\n"), "s3cret", ""},
		{"crlf", write("crlf", "s3cret\r\n"), "s3cret", ""},
		{"inner spaces kept", write("spaces", " a b \n"), " a b ", ""},
		{"empty", write("empty", ""), "", "is empty"},
		{"only newline", write("blank", "\n"), "", "is empty"},
		{"missing", filepath.Join(dir, "missing"), "", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(tc.path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Read = %q, %v; want error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Read = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECRETFILE_TEST_TOKEN", "from-env")
	for _, tc := range []struct {
		name     string
		f        Flag
		want     string
		err      error
		warnings int
	}{
		{"neither", Flag{Name: "token"}, "", nil, 0},
		{"file", Flag{Name: "token", File: file}, "from-file", nil, 0},
		{"flag warns", Flag{Name: "token", Env: "SECRETFILE_TEST_TOKEN", Value: "on-argv"}, "on-argv", nil, 1},
		{"env does not warn", Flag{Name: "token", Env: "SECRETFILE_TEST_TOKEN", Value: "from-env"}, "from-env", nil, 0},
		{"both refused", Flag{Name: "token", Value: "x", File: file}, "", ErrBoth, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			got, err := tc.f.Resolve(slog.New(slog.NewTextHandler(&buf, nil)))
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("Resolve = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
			if n := strings.Count(buf.String(), "level=WARN"); n != tc.warnings {
				t.Errorf("%d warnings, want %d: %s", n, tc.warnings, buf.String())
			}
			if strings.Contains(buf.String(), "on-argv") {
				t.Errorf("the secret is in the log: %s", buf.String())
			}
		})
	}
}

func TestEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{{"tok", "tok", true}, {"tok", "to", false}, {"tok", "tOk", false}, {"", "", false}, {"tok", "", false}} {
		if got := Equal(tc.a, tc.b); got != tc.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
