package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
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
			r.waitService(alice, app.Microservices[0], "scheduled", func(s api.Service) bool {
				return len(s.InstanceList) == 2 && allInstances(s, wire.StatusNoCapacity)
			})
			before := r.snapshot(admin)
			if crash {
				// What the API acknowledged is stored at once; background
				// changes (here the scheduler's NO_CAPACITY verdicts) within
				// a second: a crash before that loses them and the restarted
				// root judges again (TestNoAcknowledgedWriteLostOnKill covers
				// acknowledged writes under load).
				time.Sleep(2 * time.Second)
			}

			r.restart(crash)

			if got := r.adminPassword(); got != pw {
				t.Errorf("admin password file rewritten on restart")
			}
			// Tokens issued before the restart stay valid: the key is kept.
			if after := r.snapshot(admin); after != before {
				t.Errorf("state changed across restart:\nbefore %s\nafter  %s", before, after)
			}
			var fresh api.Tokens
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
			var svc api.Service
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
// server, as replicas behind a load balancer would: the first leads (it holds
// the state), the second forwards to it, and takes over when the leader
// stops. The server is FerretDB started by the test (no MongoDB server is
// packaged for Debian); the roots reach it only through --mongo-url, the same
// code path as a real MongoDB.
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
	var got api.Application
	b.must("GET", "/api/application/"+app.ApplicationID, tokA.Token, nil, &got)
	if got.ApplicationName != "shared" {
		t.Errorf("root b sees %+v", got)
	}
	if !strings.Contains(a.logs.String(), "points to FerretDB") {
		t.Errorf("root did not warn that its external store is FerretDB")
	}
	if !strings.Contains(b.logs.String(), "another root replica leads; forwarding to it") {
		t.Errorf("root b did not say that it forwards to the leader:\n%s", b.logs.String())
	}
	// Nothing went to the roots' own data dirs.
	if n, _ := conn.Client.Database("thicket_root").Collection("applications").CountDocuments(ctx, map[string]any{}); n != 1 {
		t.Errorf("external store holds %d applications, want 1", n)
	}

	// The leader stops: b takes over with everything a stored, and writes.
	a.stop()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp := b.do("GET", "/api/application/"+app.ApplicationID, tokA.Token, nil)
		if resp.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("root b did not take over within 15 s of the leader's stop: %s\n%s", resp, b.logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(b.logs.String(), "this root replica leads") {
		t.Errorf("root b answers but did not say it leads")
	}
	b.must("POST", "/api/service/"+app.Microservices[0]+"/instance", tokA.Token, nil, nil)
}

// TestNoAcknowledgedWriteLostOnKill: clients add instances as fast as they
// can while the root is killed with SIGKILL; after the restart every
// instance the root acknowledged is there (the state is written behind in
// batches, but an answer waits for its batch).
func TestNoAcknowledgedWriteLostOnKill(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=kill-admin-password"})
	admin := r.login("Admin", "kill-admin-password").Token
	app := r.createApp(admin, testSLA("load"), "load")
	svc := app.Microservices[0]

	var mu sync.Mutex
	acked := map[int]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := r.httpClient()
	client.Timeout = 10 * time.Second
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", r.URL+"/api/service/"+svc+"/instance", nil)
				req.Header.Set("Authorization", "Bearer "+admin)
				resp, err := client.Do(req)
				if err != nil {
					continue // the root is down
				}
				var ans struct {
					InstanceNumber int `json:"instance_number"`
				}
				err = json.NewDecoder(resp.Body).Decode(&ans)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && err == nil {
					mu.Lock()
					acked[ans.InstanceNumber] = true
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	r.kill()
	killedLogs := r.logs.String()
	close(stop)
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n < 10 {
		t.Fatalf("only %d instances acknowledged before the kill; the test needs load", n)
	}
	r.start()
	var got api.Service
	r.must("GET", "/api/service/"+svc, admin, nil, &got)
	have := map[int]bool{}
	for _, in := range got.InstanceList {
		have[in.InstanceNumber] = true
	}
	for num := range acked {
		if !have[num] {
			t.Errorf("instance %d was acknowledged before the kill and is gone after the restart", num)
		}
	}
	t.Logf("%d instances acknowledged before SIGKILL, %d stored after the restart", n, len(have))
	if t.Failed() {
		lines := strings.Split(killedLogs, "\n")
		t.Logf("last logs: %s", strings.Join(lines[max(0, len(lines)-8):], "\n"))
	}
	// Numbers are never reused, even for instances that were in flight.
	var ans struct {
		InstanceNumber int `json:"instance_number"`
	}
	r.must("POST", "/api/service/"+svc+"/instance", admin, nil, &ans)
	for num := range acked {
		if num >= ans.InstanceNumber {
			t.Errorf("new instance got number %d, already acknowledged before the kill", ans.InstanceNumber)
			break
		}
	}
}

// TestNoHalfWrittenApplicationsOnKill: clients create and delete
// applications (two services each, one with a fixed service IP) as fast as
// they can while the root is killed with SIGKILL; after the restart every
// application has all its services, every service its application, and no
// service IP is held by something that is gone.
func TestNoHalfWrittenApplicationsOnKill(t *testing.T) {
	r := startRoot(t, "", []string{"THICKET_ADMIN_PASSWORD=kill-admin-password"})
	admin := r.login("Admin", "kill-admin-password").Token
	const writers = 4
	sla := func(g, i int) map[string]any {
		s := testSLA(fmt.Sprintf("w%dn%d", g, i))
		app := s["applications"].([]any)[0].(map[string]any)
		app["microservices"].([]any)[0].(map[string]any)["addresses"] = map[string]any{"rr_ip": fmt.Sprintf("10.30.9.%d", g+1)}
		return s
	}
	client := r.httpClient()
	client.Timeout = 10 * time.Second
	call := func(method, path string, body any, out any) int {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, r.URL+path, rd)
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0 // the root is down
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	var cycles atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var apps []api.Application
				if call("POST", "/api/application/", sla(g, i), &apps) != http.StatusOK || len(apps) == 0 {
					continue
				}
				for _, a := range apps {
					if a.ApplicationName == fmt.Sprintf("w%dn%d", g, i) && call("DELETE", "/api/application/"+a.ApplicationID, nil, nil) == http.StatusOK {
						cycles.Add(1)
					}
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	r.kill()
	close(stop)
	wg.Wait()
	if n := cycles.Load(); n < 10 {
		t.Fatalf("only %d create/delete cycles before the kill; the test needs load", n)
	}
	r.start()

	var apps []api.Application
	r.must("GET", "/api/applications/", admin, nil, &apps)
	var svcs []api.Service
	r.must("GET", "/api/services/", admin, nil, &svcs)
	byID := map[string]api.Service{}
	for _, s := range svcs {
		byID[s.MicroserviceID] = s
	}
	appIDs := map[string]bool{}
	for _, a := range apps {
		appIDs[a.ApplicationID] = true
		if len(a.Microservices) != 2 {
			t.Errorf("application %s has %d services, want 2", a.ApplicationName, len(a.Microservices))
		}
		for _, id := range a.Microservices {
			if s, ok := byID[id]; !ok || s.ApplicationID != a.ApplicationID {
				t.Errorf("application %s lists service %s, which is not there (or not its)", a.ApplicationName, id)
			}
		}
	}
	for _, s := range svcs {
		if !appIDs[s.ApplicationID] {
			t.Errorf("service %s (%s) belongs to application %s, which is gone", s.MicroserviceID, s.MicroserviceName, s.ApplicationID)
		}
	}
	// What survived goes; then every writer's service IP is free again.
	for _, a := range apps {
		r.must("DELETE", "/api/application/"+a.ApplicationID, admin, nil, nil)
	}
	for g := range writers {
		r.createApp(admin, sla(g, 999999), fmt.Sprintf("w%dn999999", g))
	}
	t.Logf("%d create/delete cycles before SIGKILL; %d applications survived, whole", cycles.Load(), len(apps))
}
