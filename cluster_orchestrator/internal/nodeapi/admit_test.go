package nodeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/nodetokens"
	"github.com/thicket-edge/thicket/contract/wire"
)

// holdingRegistrar registers every node but "broken", and says that a
// request with credential "pw" holds its name.
type holdingRegistrar struct{}

func (holdingRegistrar) RegisterNode(_ context.Context, req wire.NodeRegisterRequest, _ string) (string, error) {
	if req.Name == "broken" {
		return "", errors.New("store down")
	}
	return "id-" + req.Name, nil
}

func (holdingRegistrar) Holds(req wire.NodeRegisterRequest) bool { return req.Credential == "pw" }

// TestRegisterWithNodeTokens: the root's node tokens admit nodes through
// the API: an expired one is refused with its reason (401), a single-use
// one once (a failed registration gives it back), a scoped one only for
// its name; a node showing its credential registers again with a spent
// token.
func TestRegisterWithNodeTokens(t *testing.T) {
	past := time.Now().Add(-time.Minute)
	mk := func(secret string, mod func(*wire.NodeToken)) wire.NodeToken {
		h := nodetokens.Hash(secret)
		x := wire.NodeToken{ID: h[:8], Hash: h}
		mod(&x)
		return x
	}
	k, err := nodetokens.New(context.Background(), "local", &nodetokens.Memory{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.SetTokens(context.Background(), []wire.NodeToken{
		mk("old", func(x *wire.NodeToken) { x.ExpiresAt = &past }),
		mk("once", func(x *wire.NodeToken) { x.SingleUse = true }),
		mk("w1", func(x *wire.NodeToken) { x.NodeName = "w1" }),
	}); err != nil {
		t.Fatal(err)
	}
	h := Handler(Config{Tokens: k, MQTTURL: "mqtts://127.0.0.1:1883"}, holdingRegistrar{}, slog.New(slog.DiscardHandler))
	pin := "thk1" + strings.Repeat("a", 64) + "::"
	for _, tc := range []struct {
		name, token, node, cred string
		status                  int
		want                    string
	}{
		{"own token", "local", "a", "", http.StatusOK, "id-a"},
		{"expired", pin + "old", "a", "", http.StatusUnauthorized, "expired at"},
		{"expired, its own credential", pin + "old", "a", "pw", http.StatusOK, "id-a"},
		{"single use fails to register", pin + "once", "broken", "", http.StatusInternalServerError, "internal error"},
		{"single use, given back", pin + "once", "b", "", http.StatusOK, "id-b"},
		{"single use, second", pin + "once", "c", "", http.StatusUnauthorized, "spent"},
		{"single use, the node again with its credential", pin + "once", "b", "pw", http.StatusOK, "id-b"},
		{"scoped, another name", pin + "w1", "w2", "", http.StatusUnauthorized, `only a node named \"w1\"`},
		{"scoped, its name", pin + "w1", "w1", "", http.StatusOK, "id-w1"},
		{"unknown", pin + "nope", "a", "pw", http.StatusUnauthorized, "invalid node join token"},
	} {
		body, _ := json.Marshal(wire.NodeRegisterRequest{Version: wire.Version, Name: tc.node, NodeID: "id-" + tc.node, Credential: tc.cred})
		r := httptest.NewRequest(http.MethodPost, "/api/node/register", bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+tc.token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, w.Code, w.Body, tc.status, tc.want)
		}
	}
}
