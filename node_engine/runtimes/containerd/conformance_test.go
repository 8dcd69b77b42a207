package containerd_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
	"github.com/thicket-edge/thicket/node_engine/runtimes/runtimetest"
)

// TestConformance runs the runtime conformance suite with the test image.
func TestConformance(t *testing.T) {
	runtimetest.Run(t, runtimetest.Factory{
		New: func(t *testing.T) (runtimes.Runtime, func(*testing.T) runtimes.Runtime) {
			rt := newRuntime(t)
			return rt, func(t *testing.T) runtimes.Runtime { return openRuntime(t, rt.Config()) }
		},
		Serve: func(t *testing.T, key string) wire.InstanceSpec {
			return spec(key, testharness.FreePort(t))
		},
		ServeLog: "listening on",
		Exit: func(t *testing.T, key string, code int) wire.InstanceSpec {
			return spec(key, testharness.FreePort(t), "exit", fmt.Sprint(code))
		},
		ExitCodes: []int{3, 42},
		Alloc: func(t *testing.T, key string, mb int64) wire.InstanceSpec {
			s := spec(key, testharness.FreePort(t), "alloc", fmt.Sprint(mb))
			s.Resources.MemoryMB = 64
			return s
		},
		MemoryLimitMB: 64,
		Broken: func(t *testing.T, key string, b runtimetest.Broken) (wire.InstanceSpec, string) {
			s := spec(key, testharness.FreePort(t))
			switch b {
			case runtimetest.MissingCode:
				s.Code = registry.Addr + "/does-not-exist:v1"
				return s, s.Code + ": not found"
			case runtimetest.MalformedCode:
				s.Code = "Bad Reference!"
				return s, `image "Bad Reference!"`
			default: // WrongDigest: the image pinned to a digest it has not
				repo, _, _ := strings.Cut(imageRef, ":v1")
				s.Code = repo + "@sha256:" + strings.Repeat("0", 64)
				return s, s.Code + ": not found"
			}
		},
	})
}
