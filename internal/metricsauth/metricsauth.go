// Package metricsauth serves Prometheus' /metrics behind a bearer token:
// the metrics name clusters, nodes and request rates, which is for the
// operators' eyes only. thicket-root and thicket-cluster each keep the
// token in <data-dir>/metrics-token (generated on first start, mode 0600)
// or take it from --metrics-token-file; Prometheus sends it with
// `authorization: {credentials_file: …}`.
package metricsauth

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/thicket-edge/thicket/internal/secretfile"
)

// TokenFile is the file, in a daemon's data dir, holding its metrics token
// unless --metrics-token-file names another.
const TokenFile = "metrics-token"

// TokenPrefix starts every generated metrics token.
const TokenPrefix = "thm_"

// Token returns the metrics token: from file when one is named (it must
// exist), else from <dataDir>/metrics-token, created on first start.
func Token(file, dataDir string) (string, error) {
	if file != "" {
		tok, err := secretfile.Read(file)
		if err != nil {
			return "", fmt.Errorf("--metrics-token-file: %w", err)
		}
		return tok, nil
	}
	return secretfile.LoadOrCreate(filepath.Join(dataDir, TokenFile), TokenPrefix)
}

// Handler serves the default Prometheus registry to requests carrying
// "Authorization: Bearer <token>", and 401 to any other.
func Handler(token string) http.Handler {
	return Require(token, promhttp.Handler())
}

// Require passes to h the requests carrying the bearer token (compared in
// constant time) and answers 401 to any other.
func Require(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !secretfile.Equal(got, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"/metrics needs Authorization: Bearer <metrics token> (the data dir's metrics-token)"}` + "\n"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
