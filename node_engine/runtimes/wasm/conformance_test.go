package wasm_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
	"github.com/thicket-edge/thicket/node_engine/runtimes/runtimetest"
)

// TestConformance runs the runtime conformance suite with the test module.
func TestConformance(t *testing.T) {
	_, url := serveApp(t)
	runtimetest.Run(t, runtimetest.Factory{
		New: func(t *testing.T) (runtimes.Runtime, func(*testing.T) runtimes.Runtime) {
			rt := newRuntime(t)
			return rt, func(t *testing.T) runtimes.Runtime { return openRuntime(t, rt.Config()) }
		},
		Serve: func(t *testing.T, key string) wire.InstanceSpec {
			return spec(key, url, 64, "sleep", "600")
		},
		ServeLog: "sleeping 600 s",
		Exit: func(t *testing.T, key string, code int) wire.InstanceSpec {
			return spec(key, url, 64, "exit", fmt.Sprint(code))
		},
		ExitCodes: []int{3, 42},
		Alloc: func(t *testing.T, key string, mb int64) wire.InstanceSpec {
			return spec(key, url, 64, "alloc", fmt.Sprint(mb))
		},
		MemoryLimitMB: 64,
		Broken: func(t *testing.T, key string, b runtimetest.Broken) (wire.InstanceSpec, string) {
			switch b {
			case runtimetest.MissingCode:
				s := spec(key, server.URL+"/missing.wasm", 64)
				return s, "fetch module " + s.Code + ": 404 Not Found"
			case runtimetest.MalformedCode:
				return spec(key, "ftp://example.org/app.wasm", 64), "want an http or https URL"
			default:
				s := spec(key, url+"#sha256="+strings.Repeat("0", 64), 64)
				return s, "has sha256 "
			}
		},
	})
}
