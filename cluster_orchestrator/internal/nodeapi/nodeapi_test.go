package nodeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestBrokerFor: a node that reached the cluster from elsewhere is not
// handed a loopback broker address (Docker Compose's default advertise
// address), but the host it dialled, with the broker's port.
func TestBrokerFor(t *testing.T) {
	for _, tt := range []struct{ url, host, want string }{
		{"tcp://127.0.0.1:10003", "192.0.2.10:10100", "tcp://192.0.2.10:10003"},
		{"tcp://localhost:10003", "192.0.2.10:10100", "tcp://192.0.2.10:10003"},
		{"tcp://127.0.0.1:10003", "[2001:db8::5]:10100", "tcp://[2001:db8::5]:10003"},
		{"tcp://127.0.0.1:10003", "edge.example:10100", "tcp://edge.example:10003"},
		{"tcp://127.0.0.1", "192.0.2.10:10100", "tcp://192.0.2.10"},
		{"tcp://127.0.0.1:10003", "192.0.2.10", "tcp://192.0.2.10:10003"},
		// A node on the same machine keeps loopback.
		{"tcp://127.0.0.1:10003", "127.0.0.1:10100", "tcp://127.0.0.1:10003"},
		{"tcp://127.0.0.1:10003", "localhost:10100", "tcp://127.0.0.1:10003"},
		{"tcp://127.0.0.1:10003", "[::1]:10100", "tcp://127.0.0.1:10003"},
		// An advertised address that is not loopback is the operator's word.
		{"tcp://10.0.0.5:10003", "192.0.2.10:10100", "tcp://10.0.0.5:10003"},
		{"tls://broker.example:8883", "192.0.2.10:10100", "tls://broker.example:8883"},
		{"tcp://127.0.0.1:10003", "", "tcp://127.0.0.1:10003"},
	} {
		if got := brokerFor(tt.url, tt.host); got != tt.want {
			t.Errorf("brokerFor(%q, %q) = %q, want %q", tt.url, tt.host, got, tt.want)
		}
	}
}

type takenErr struct{}

func (takenErr) Error() string {
	return `node name "n1" is taken by a registered node; start it with --name`
}
func (takenErr) NameTaken() string { return "n1" }

type deletedErr struct{}

func (deletedErr) Error() string {
	return "node n3 (id-n3) was deleted by an admin; its credential is revoked"
}
func (deletedErr) NodeDeleted() string { return "id-n3" }

type registrarFunc func(wire.NodeRegisterRequest) (string, error)

func (f registrarFunc) RegisterNode(_ context.Context, req wire.NodeRegisterRequest, _ string) (string, error) {
	return f(req)
}

// TestRegisterStatuses: a name taken by another node is 409 with the
// registrar's explanation, a wrong token 401, success 200 with the id.
func TestRegisterStatuses(t *testing.T) {
	reg := registrarFunc(func(req wire.NodeRegisterRequest) (string, error) {
		if req.NodeID == "id-n3" {
			return "", fmt.Errorf("register: %w", deletedErr{})
		}
		if req.Name == "n1" && req.Credential != "pw" {
			return "", fmt.Errorf("register: %w", takenErr{})
		}
		return "id-" + req.Name, nil
	})
	// The cluster's token carries its CA's pin; nodes may show the secret
	// alone or the whole token, and the answer carries the broker's CA.
	other := "thk1" + strings.Repeat("b", 64)
	h := Handler(Config{JoinToken: "thk1" + strings.Repeat("a", 64) + "::tok", MQTTURL: "mqtts://127.0.0.1:1883", MQTTCAPEM: "ca-pem"}, reg, slog.New(slog.DiscardHandler))

	for _, tc := range []struct {
		name, token string
		req         wire.NodeRegisterRequest
		status      int
		want        string
	}{
		{"taken", "tok", wire.NodeRegisterRequest{Version: wire.Version, Name: "n1"}, http.StatusConflict, "--name"},
		{"its own", "tok", wire.NodeRegisterRequest{Version: wire.Version, Name: "n1", NodeID: "id-n1", Credential: "pw"}, http.StatusOK, "id-n1"},
		{"new", "tok", wire.NodeRegisterRequest{Version: wire.Version, Name: "n2"}, http.StatusOK, "id-n2"},
		{"deleted", "tok", wire.NodeRegisterRequest{Version: wire.Version, Name: "n3", NodeID: "id-n3", Credential: "pw"}, http.StatusConflict, "deleted by an admin"},
		{"wrong token", "bad", wire.NodeRegisterRequest{Version: wire.Version, Name: "n2"}, http.StatusUnauthorized, "invalid node join token"},
		{"whole token", "thk1" + strings.Repeat("a", 64) + "::tok", wire.NodeRegisterRequest{Version: wire.Version, Name: "n3"}, http.StatusOK, `"mqtt_ca_pem":"ca-pem"`},
		// The pin is not checked here (the node checks it), the secret is.
		{"another pin, same secret", other + "::tok", wire.NodeRegisterRequest{Version: wire.Version, Name: "n4"}, http.StatusOK, "id-n4"},
		{"the pin as a secret", strings.Repeat("a", 64), wire.NodeRegisterRequest{Version: wire.Version, Name: "n2"}, http.StatusUnauthorized, "invalid"},
		{"the whole token as a secret", "thk1" + strings.Repeat("a", 64), wire.NodeRegisterRequest{Version: wire.Version, Name: "n2"}, http.StatusUnauthorized, "invalid"},
		{"empty", "", wire.NodeRegisterRequest{Version: wire.Version, Name: "n2"}, http.StatusUnauthorized, "invalid"},
	} {
		body, _ := json.Marshal(tc.req)
		r := httptest.NewRequest(http.MethodPost, "/api/node/register", bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+tc.token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, w.Code, w.Body, tc.status, tc.want)
		}
	}
}
