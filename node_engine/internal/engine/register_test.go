package engine

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestRegister: the node registers with its join token and what it runs
// and has, keeps the cluster's answer in its data dir and finds it there
// again (for this cluster only); a refused token is ErrJoinRefused.
func TestRegister(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		wantErr error  // nil: success
		errText string // in the error
	}{
		{name: "accepted", status: http.StatusOK, body: `{"node_id":"node-7","mqtt_url":"tcp://b:1883","desired_topic":"d","report_topic":"r","report_interval_ms":500}`},
		{name: "token refused", status: http.StatusUnauthorized, body: `{"error":"bad token"}`, wantErr: ErrJoinRefused},
		{name: "cluster error", status: http.StatusConflict, body: `{"error":"name taken"}`, errText: "name taken"},
		{name: "garbled answer", status: http.StatusOK, body: `{"node_id":`, errText: "decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got wire.NodeRegisterRequest
			var auth string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/api/node/register" {
					http.NotFound(w, r)
					return
				}
				auth = r.Header.Get("Authorization")
				_ = json.NewDecoder(r.Body).Decode(&got)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			cfg := Config{ClusterURL: srv.URL + "/", JoinToken: "join-secret", Name: "n1", Address: "192.0.2.10", DataDir: t.TempDir()}
			e := newTestEngine(cfg, newFakeRuntime("container"), newFakeRuntime("wasm"))
			e.want(wire.NodeDesired{Subnet: "10.64.3.0/24"})
			c, err := e.register(context.Background())
			if auth != "Bearer join-secret" || got.Name != "n1" || got.Address != "192.0.2.10" || got.Subnet != "10.64.3.0/24" ||
				strings.Join(got.Virtualizations, ",") != "container,wasm" || got.Version != wire.Version {
				t.Errorf("request: auth %q body %+v", auth, got)
			}
			saved, lerr := e.loadCredentials()
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tc.wantErr != nil || tc.errText != "" {
				if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("register = %v; want %v %q", err, tc.wantErr, tc.errText)
				}
				if saved != nil {
					t.Errorf("a failed registration saved credentials: %+v", saved)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.NodeID != "node-7" || c.interval() != 500*time.Millisecond || saved == nil || saved.NodeID != "node-7" || saved.MQTTURL != "tcp://b:1883" {
				t.Errorf("credentials %+v, saved %+v", c, saved)
			}
			// Another cluster: the saved identity is not ours there.
			e.cfg.ClusterURL = "http://other"
			if other, err := e.loadCredentials(); err != nil || other != nil {
				t.Errorf("credentials for another cluster: %+v, %v; want none", other, err)
			}
		})
	}
}
