package metricsauth

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRequire(t *testing.T) {
	h := Require("thm_right", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("metrics")) }))
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"none", "", http.StatusUnauthorized},
		{"wrong", "Bearer thm_wrong", http.StatusUnauthorized},
		{"prefix of it", "Bearer thm_righ", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"not bearer", "Basic thm_right", http.StatusUnauthorized},
		{"right", "Bearer thm_right", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status || (tc.status == http.StatusOK) != (rec.Body.String() == "metrics") {
				t.Fatalf("status %d body %q, want %d", rec.Code, rec.Body.String(), tc.status)
			}
		})
	}
	if rec := httptest.NewRecorder(); true {
		Require("", http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("an empty token let a request without one through: %d", rec.Code)
		}
	}
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	tok, err := Token("", dir)
	if err != nil || !strings.HasPrefix(tok, TokenPrefix) || len(tok) < 40 {
		t.Fatalf("generated token %q, %v", tok, err)
	}
	fi, err := os.Stat(filepath.Join(dir, TokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file %v, %v; want mode 0600", fi, err)
	}
	if again, err := Token("", dir); err != nil || again != tok {
		t.Fatalf("second start read %q, %v; want %q", again, err, tok)
	}
	own := filepath.Join(dir, "own")
	if err := os.WriteFile(own, []byte("operator-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := Token(own, dir); err != nil || got != "operator-token" {
		t.Fatalf("Token(file) = %q, %v", got, err)
	}
	if _, err := Token(filepath.Join(dir, "missing"), dir); err == nil || !strings.Contains(err.Error(), "--metrics-token-file") {
		t.Fatalf("a missing --metrics-token-file: %v", err)
	}
}
