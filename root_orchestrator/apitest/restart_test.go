package apitest

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	rest "github.com/thicket-edge/thicket/contract/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/mongodb"
)

func TestDataSurvivesRestartAndCrash(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := map[bool]string{false: "SIGTERM", true: "SIGKILL"}[crash]
		t.Run(name, func(t *testing.T) {
			r := startRoot(t, "", nil)
			pw := r.adminPassword()
			tok := r.login("Admin", pw)
			admin := tok.Token
			alice := r.newUser(admin, "alice")
			app := r.createApp(alice, testSLA("persist"), "persist")
			r.must("POST", "/api/service/"+app.Microservices[0]+"/instance", alice, nil, nil)
			r.must("POST", "/api/service/"+app.Microservices[0]+"/instance", alice, nil, nil)
			r.waitService(alice, app.Microservices[0], "scheduled", func(s rest.Service) bool {
				return len(s.InstanceList) == 2 && allInstances(s, wire.StatusNoCapacity)
			})
			before := r.snapshot(admin)

			r.restart(crash)

			if got := r.adminPassword(); got != pw {
				t.Errorf("admin password file rewritten on restart")
			}
			// Tokens issued before the restart stay valid: the key is kept.
			if after := r.snapshot(admin); after != before {
				t.Errorf("state changed across restart:\nbefore %s\nafter  %s", before, after)
			}
			var fresh rest.Tokens
			r.must("POST", "/api/auth/refresh", tok.RefreshToken, nil, &fresh)
			r.login("alice", "pw-alice-secret")
			// Instance numbering continues where it was.
			var ans struct {
				InstanceNumber int `json:"instance_number"`
			}
			r.must("POST", "/api/service/"+app.Microservices[0]+"/instance", alice, nil, &ans)
			if ans.InstanceNumber != 2 {
				t.Errorf("instance number after restart = %d, want 2", ans.InstanceNumber)
			}
			// Service IPs stay reserved.
			var svc rest.Service
			r.must("GET", "/api/service/"+app.Microservices[1], admin, nil, &svc)
			clash := testSLA("clash")
			ms := clash["applications"].([]any)[0].(map[string]any)["microservices"].([]any)
			ms[0].(map[string]any)["addresses"] = map[string]string{"rr_ip": svc.RRIP}
			if resp := r.do("POST", "/api/application", admin, clash); resp.Status != http.StatusConflict {
				t.Errorf("rr_ip of a stored service reused after restart: %s", resp)
			}
		})
	}
}

// TestExternalMongoURL runs two roots on one external MongoDB-compatible
// server, as replicas behind a load balancer would: they share users,
// applications and the signing key. The server is FerretDB started by the
// test (no MongoDB server is packaged for Debian); the roots reach it only
// through --mongo-url, the same code path as a real MongoDB. (Replicas need
// MongoDB proper: FerretDB does not make concurrent updates atomic, which
// the roots detect and warn about; this test writes from one root at a
// time.)
func TestExternalMongoURL(t *testing.T) {
	ctx := context.Background()
	conn, err := mongodb.Open(ctx, mongodb.Options{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	env := []string{"THICKET_ADMIN_PASSWORD=shared-admin-password"}
	a := startRoot(t, "", env, "--mongo-url", conn.URI)
	b := startRoot(t, "", env, "--mongo-url", conn.URI)

	tokA := a.login("Admin", "shared-admin-password")
	app := a.createApp(tokA.Token, testSLA("shared"), "shared")
	// A token from root a works on root b, and b sees a's application.
	var got rest.Application
	b.must("GET", "/api/application/"+app.ApplicationID, tokA.Token, nil, &got)
	if got.ApplicationName != "shared" {
		t.Errorf("root b sees %+v", got)
	}
	if !strings.Contains(a.logs.String(), "points to FerretDB") {
		t.Errorf("root did not warn that its external store is FerretDB")
	}
	// Nothing went to the roots' own data dirs.
	if n, _ := conn.Client.Database("thicket_root").Collection("applications").CountDocuments(ctx, map[string]any{}); n != 1 {
		t.Errorf("external store holds %d applications, want 1", n)
	}
}
