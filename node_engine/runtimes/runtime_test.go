package runtimes_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/node_engine/runtimes"
)

// fake is a runtime that is available or not.
type fake struct {
	virt string
	err  error
}

func (f fake) Virtualization() string                                { return f.virt }
func (f fake) Available(context.Context) error                       { return f.err }
func (f fake) Start(context.Context, wire.InstanceSpec) error        { return nil }
func (f fake) Remove(context.Context, string) error                  { return nil }
func (f fake) List(context.Context) ([]runtimes.State, error)        { return nil, nil }
func (f fake) Logs(context.Context, string, int) (string, error)     { return "", nil }
func (f fake) Events() <-chan runtimes.State                         { return nil }
func (f fake) Usage(context.Context, string) (runtimes.Usage, error) { return runtimes.Usage{}, nil }

func TestRegistry(t *testing.T) {
	down := errors.New("down")
	for _, tc := range []struct {
		name      string
		runtimes  []runtimes.Runtime
		available []string
		get       map[string]bool
	}{
		{"empty", nil, nil, map[string]bool{"container": false}},
		{"one", []runtimes.Runtime{fake{virt: "container"}}, []string{"container"}, map[string]bool{"container": true, "wasm": false}},
		{"sorted, unavailable left out",
			[]runtimes.Runtime{fake{virt: "wasm"}, fake{virt: "unikernel", err: down}, fake{virt: "container"}},
			[]string{"container", "wasm"},
			map[string]bool{"container": true, "unikernel": true, "wasm": true, "vm": false}},
		{"later replaces earlier",
			[]runtimes.Runtime{fake{virt: "container", err: down}, fake{virt: "container"}},
			[]string{"container"}, map[string]bool{"container": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runtimes.NewRegistry(tc.runtimes...)
			if got := r.Available(context.Background()); !slices.Equal(got, tc.available) {
				t.Errorf("Available = %v, want %v", got, tc.available)
			}
			for virt, want := range tc.get {
				rt, ok := r.Get(virt)
				if ok != want || ok && rt.Virtualization() != virt {
					t.Errorf("Get(%q) = %v, %v; want found=%v", virt, rt, ok, want)
				}
			}
			if n := len(r.All()); n != len(tc.get)-countFalse(tc.get) {
				t.Errorf("All has %d runtimes", n)
			}
		})
	}
}

func countFalse(m map[string]bool) int {
	n := 0
	for _, v := range m {
		if !v {
			n++
		}
	}
	return n
}
