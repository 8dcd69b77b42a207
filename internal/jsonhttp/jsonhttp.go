// Package jsonhttp writes JSON answers for the daemons' small HTTP APIs
// (the cluster's node API, thicket-net's local API); the root's REST API
// has its own framework.
package jsonhttp

import (
	"encoding/json"
	"net/http"
)

// Write answers status with v encoded as JSON. An encoding error can only
// be a bug in v's type; the status is already sent by then, so it is not
// reported.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
