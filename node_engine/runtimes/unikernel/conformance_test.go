package unikernel_test

import (
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
	"github.com/thicket-edge/thicket/node_engine/runtimes/runtimetest"
	"github.com/thicket-edge/thicket/node_engine/testimage"
)

// TestConformance runs the runtime conformance suite with the test image
// (its modes make the one-shot instances).
func TestConformance(t *testing.T) {
	runtimetest.Run(t, runtimetest.Factory{
		New: func(t *testing.T) (runtimes.Runtime, func(*testing.T) runtimes.Runtime) {
			rt := newRuntime(t)
			return rt, func(t *testing.T) runtimes.Runtime { return openRuntime(t, rt.Config()) }
		},
		Serve: func(t *testing.T, key string) wire.InstanceSpec {
			return spec(key, imageURL)
		},
		ServeLog: testimage.UnikernelUp,
		Exit: func(t *testing.T, key string, code int) wire.InstanceSpec {
			switch code {
			case 0:
				return spec(key, imageURL, testimage.UnikernelModeExit0)
			case 1: // the guest panics; pvpanic makes qemu exit 1
				return spec(key, imageURL, testimage.UnikernelModePanic)
			}
			t.Fatalf("the test image cannot exit with code %d", code)
			return wire.InstanceSpec{}
		},
		// A machine's exit code is qemu's: the guest chooses only between
		// powering off (0) and panicking (1) here.
		ExitCodes: []int{1},
		Alloc: func(t *testing.T, key string, mb int64) wire.InstanceSpec {
			return spec(key, imageURL, testimage.UnikernelModeAlloc, testimage.UnikernelAlloc(mb))
		},
		MemoryLimitMB: 128, // spec's: the machine's memory
		Broken: func(t *testing.T, key string, b runtimetest.Broken) (wire.InstanceSpec, string) {
			switch b {
			case runtimetest.MissingCode:
				s := spec(key, server.URL+"/missing.tar.gz")
				return s, "fetch image " + s.Code + ": 404 Not Found"
			case runtimetest.MalformedCode:
				return spec(key, "ftp://example.org/uk.tar.gz"), "want an http or https URL"
			default:
				return spec(key, imageURL+"#sha256="+strings.Repeat("0", 64)), "has sha256 "
			}
		},
		Timeout: 90 * time.Second,
	})
}
