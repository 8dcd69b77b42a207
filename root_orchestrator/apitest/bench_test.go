package apitest

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
)

// BenchmarkCreateDeleteApplication measures POST /api/application with a
// two-service SLA followed by DELETE /api/application/{id}, against a real
// thicket-root on its embedded store: HTTP, JWT check, validation,
// service-IP reservation and the writes. Deleting keeps the store's size,
// and so each iteration's cost, constant.
func BenchmarkCreateDeleteApplication(b *testing.B) {
	r := startRoot(b, "", []string{"THICKET_ADMIN_PASSWORD=bench-admin-password"})
	admin := r.login("Admin", "bench-admin-password").Token
	i := 0
	for b.Loop() {
		i++
		var apps []api.Application
		r.must("POST", "/api/application/", admin, testSLA(fmt.Sprintf("bench%d", i)), &apps)
		r.must("DELETE", "/api/application/"+apps[0].ApplicationID, admin, nil, nil)
	}
}

// BenchmarkGetService measures GET /api/service/{id}, the call clients poll.
func BenchmarkGetService(b *testing.B) {
	r := startRoot(b, "", []string{"THICKET_ADMIN_PASSWORD=bench-admin-password"})
	admin := r.login("Admin", "bench-admin-password").Token
	app := r.createApp(admin, testSLA("bench"), "bench")
	for b.Loop() {
		r.must("GET", "/api/service/"+app.Microservices[0], admin, nil, nil)
	}
}

// BenchmarkAddInstanceParallel measures POST /api/service/{id}/instance from
// eight concurrent callers (as the placement benchmark does), with no
// cluster: the API path and the durable write the answer waits for.
func BenchmarkAddInstanceParallel(b *testing.B) {
	r := startRoot(b, "", []string{"THICKET_ADMIN_PASSWORD=bench-admin-password"})
	admin := r.login("Admin", "bench-admin-password").Token
	app := r.createApp(admin, testSLA("bench"), "bench")
	b.SetParallelism(4) // × GOMAXPROCS (2 here): 8 callers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.must("POST", "/api/service/"+app.Microservices[0]+"/instance", admin, nil, nil)
		}
	})
}

// BenchmarkPlaceInstances measures what the placement benchmark (bench,
// section 4) issues: POST /api/service/{id}/instance through api.Client
// (each with a fresh Idempotency-Key, as every create of api.Client has),
// round robin over ten services, from eight concurrent callers sharing one
// keep-alive transport, with no cluster: the root's API path and the
// durable writes each answer waits for.
func BenchmarkPlaceInstances(b *testing.B) {
	r := startRoot(b, "", []string{"THICKET_ADMIN_PASSWORD=bench-admin-password"})
	admin := r.login("Admin", "bench-admin-password").Token
	sla := testSLA("bench")
	app0 := sla["applications"].([]any)[0].(map[string]any)
	base := app0["microservices"].([]any)[0].(map[string]any)
	svcs := make([]any, 10)
	for i := range svcs {
		m := maps.Clone(base)
		m["microservice_name"], m["port"] = fmt.Sprintf("s%d", i), ""
		svcs[i] = m
	}
	app0["microservices"] = svcs
	app := r.createApp(admin, sla, "bench")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	c := r.started.API(api.Config{HTTPClient: &http.Client{Timeout: time.Minute, Transport: tr}}).WithToken(admin)
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(4) // × GOMAXPROCS (2 here): 8 callers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			svc := app.Microservices[int(next.Add(1))%len(app.Microservices)]
			if _, err := c.AddInstance(ctx, svc); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "placements/s")
}
