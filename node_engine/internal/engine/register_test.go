package engine

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/pki"
)

// serveTLS starts srv with a certificate of a new CA, as a cluster serves
// its node API, and returns the join token that pins that CA.
func serveTLS(t *testing.T, srv *httptest.Server, secret string) string {
	t.Helper()
	ca, cert, err := pki.NewCAWithLeaf("test cluster CA", pki.Leaf{Name: "cluster", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tok, err := pki.JoinToken(ca.Pin(), secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestRegisterRefusesUnverified: the node sends nothing to a server it
// cannot verify: one of another CA than its token pins (the error names
// both pins), a plain http:// URL without the development flag, an
// https:// URL with a token without a pin; and the broker it is told of
// must be mqtts:// without the flag.
func TestRegisterRefusesUnverified(t *testing.T) {
	var calls atomic.Int32
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = w.Write([]byte(`{"node_id":"n","mqtt_url":"tcp://b:1883"}`))
	})
	mitm := httptest.NewUnstartedServer(handler)
	mitmTok := serveTLS(t, mitm, "join-secret")
	real := httptest.NewUnstartedServer(handler)
	realTok := serveTLS(t, real, "join-secret")
	plain := httptest.NewServer(handler)
	defer plain.Close()
	realPin, _, _ := pki.ParseJoinToken(realTok)
	mitmPin, _, _ := pki.ParseJoinToken(mitmTok)
	for _, tc := range []struct {
		name, url, token string
		insecure         bool
		want             error
		texts            []string
		calls            int32
	}{
		{name: "another CA", url: mitm.URL, token: realTok, want: pki.ErrPinMismatch,
			texts: []string{"refused the server, nothing sent", "expected " + realPin, "presented " + mitmPin}},
		{name: "plain URL", url: plain.URL, token: realTok, want: ErrUntrusted, texts: []string{"is plain HTTP", "--insecure-plaintext"}},
		{name: "token without a pin", url: real.URL, token: "join-secret", want: ErrUntrusted, texts: []string{"carries no pin"}},
		{name: "plain URL allowed, plain broker allowed", url: plain.URL, token: realTok, insecure: true, calls: 1},
		{name: "pinned, plain broker refused", url: real.URL, token: realTok, want: ErrUntrusted, texts: []string{"plain MQTT broker"}, calls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls.Store(0)
			e := newTestEngine(Config{ClusterURL: tc.url, JoinToken: tc.token, InsecurePlaintext: tc.insecure, DataDir: t.TempDir()})
			c, err := e.register(context.Background())
			if err == nil {
				_, err = e.mqttTLS(c)
			}
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("register = %v, want %v", err, tc.want)
			}
			for _, text := range tc.texts {
				if !strings.Contains(err.Error(), text) {
					t.Errorf("error %q lacks %q", err, text)
				}
			}
			if calls.Load() != tc.calls {
				t.Errorf("%d requests reached the server, want %d", calls.Load(), tc.calls)
			}
		})
	}
}

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
		{name: "accepted", status: http.StatusOK, body: `{"node_id":"node-7","mqtt_url":"mqtts://b:8883","mqtt_ca_pem":"ca","mqtt_password":"pw-7","desired_topic":"d","report_topic":"r","report_interval_ms":500}`},
		{name: "token refused", status: http.StatusUnauthorized, body: `{"error":"bad token"}`, wantErr: ErrJoinRefused},
		{name: "name taken", status: http.StatusConflict, body: `{"error":"node name \"n1\" is taken"}`, wantErr: ErrNameTaken, errText: `the node name is taken: node name "n1" is taken`},
		{name: "cluster error", status: http.StatusServiceUnavailable, body: `{"error":"busy"}`, errText: "busy"},
		{name: "garbled answer", status: http.StatusOK, body: `{"node_id":`, errText: "decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got wire.NodeRegisterRequest
			var auth string
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/api/node/register" {
					http.NotFound(w, r)
					return
				}
				auth = r.Header.Get("Authorization")
				_ = json.NewDecoder(r.Body).Decode(&got)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			token := serveTLS(t, srv, "join-secret")
			cfg := Config{ClusterURL: srv.URL + "/", JoinToken: token, Name: "n1", Address: "192.0.2.10", DataDir: t.TempDir()}
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
			pin, _, _ := pki.ParseJoinToken(token)
			if c.NodeID != "node-7" || c.interval() != 500*time.Millisecond || saved == nil || saved.NodeID != "node-7" || saved.MQTTURL != "mqtts://b:8883" ||
				saved.MQTTCAPEM != "ca" || saved.CAPin != pin {
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
			e.cfg.ClusterURL = "https://other"
			if other, err := e.loadCredentials(); err != nil || other != nil {
				t.Errorf("credentials for another cluster: %+v, %v; want none", other, err)
			}
		})
	}
}

// TestSavedCredentialsFollowThePin: the saved broker CA is trusted only
// while the token pins the CA the registration was verified with; a token
// of a new CA keeps the node's identity (to show when it registers again)
// but drops the broker it was told of, so the node registers anew.
func TestSavedCredentialsFollowThePin(t *testing.T) {
	pinA, pinB := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	tokA, _ := pki.JoinToken(pinA, "s")
	tokB, _ := pki.JoinToken(pinB, "s")
	dir := t.TempDir()
	saved := credentials{ClusterURL: "https://c:10100", CAPin: pinA, NodeRegisterResponse: wire.NodeRegisterResponse{
		NodeID: "n-1", MQTTURL: "mqtts://c:10003", MQTTPassword: "pw", MQTTCAPEM: "ca"}}
	b, _ := json.Marshal(saved)
	if err := os.WriteFile(filepath.Join(dir, credentialsFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token, url, caPEM string
	}{
		{tokA, "mqtts://c:10003", "ca"},
		{tokB, "", ""},
	} {
		e := newTestEngine(Config{ClusterURL: "https://c:10100", JoinToken: tc.token, DataDir: dir})
		c, err := e.loadCredentials()
		if err != nil || c == nil || c.NodeID != "n-1" || c.MQTTPassword != "pw" || c.MQTTURL != tc.url || c.MQTTCAPEM != tc.caPEM {
			t.Errorf("token %.10s…: %+v %v; want broker %q CA %q and the identity", tc.token, c, err, tc.url, tc.caPEM)
		}
	}
}
