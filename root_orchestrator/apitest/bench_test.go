package apitest

import (
	"fmt"
	"testing"

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
