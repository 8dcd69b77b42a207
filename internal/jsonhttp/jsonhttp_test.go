package jsonhttp_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/thicket-edge/thicket/internal/jsonhttp"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	jsonhttp.Write(rec, http.StatusConflict, map[string]string{"error": "taken"})
	if rec.Code != http.StatusConflict {
		t.Errorf("status %d, want 409", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if got := rec.Body.String(); got != "{\"error\":\"taken\"}\n" {
		t.Errorf("body %q", got)
	}
}
