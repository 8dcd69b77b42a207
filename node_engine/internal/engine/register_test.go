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
// again (for this cluster only), and shows it when it registers again; a
// refused token is ErrJoinRefused, a name of another node ErrNameTaken.
func TestRegister(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		wantErr error  // nil: success
		errText string // in the error
	}{
		{name: "accepted", status: http.StatusOK, body: `{"node_id":"node-7","mqtt_url":"tcp://b:1883","mqtt_password":"pw-7","desired_topic":"d","report_topic":"r","report_interval_ms":500}`},
		{name: "token refused", status: http.StatusUnauthorized, body: `{"error":"bad token"}`, wantErr: ErrJoinRefused},
		{name: "name taken", status: http.StatusConflict, body: `{"error":"node name \"n1\" is taken"}`, wantErr: ErrNameTaken, errText: `the node name is taken: node name "n1" is taken`},
		{name: "cluster error", status: http.StatusServiceUnavailable, body: `{"error":"busy"}`, errText: "busy"},
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
			// Registering again, it shows the identity it holds.
			if _, err := e.register(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got.NodeID != "node-7" || got.Credential != saved.MQTTPassword {
				t.Errorf("registering again sent node %q credential %q, want its saved ones", got.NodeID, got.Credential)
			}
			// Another cluster: the saved identity is not ours there.
			e.cfg.ClusterURL = "http://other"
			if other, err := e.loadCredentials(); err != nil || other != nil {
				t.Errorf("credentials for another cluster: %+v, %v; want none", other, err)
			}
		})
	}
}
