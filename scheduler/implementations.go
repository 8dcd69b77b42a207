package scheduler

import (
	"errors"
	"strings"

	"github.com/thicket-edge/thicket/contract/wire"
)

// Overloaded services (wire.InstanceSpec.Implementations): a spec may list
// several implementations of one service in preference order (a wasm
// build, a container image, a unikernel). The schedulers try them in that
// order: the first implementation some candidate can run is the one
// chosen, on the best candidate for it; each implementation before it is
// reported with why no candidate took it, each one after it as not needed.
// A single-implementation spec is placed as before.

// Choice is the implementation chosen for an instance and why: Index into
// the spec's Implementations (-1: the spec has none, it runs as it is) and
// one line per implementation, in preference order.
type Choice struct {
	Index   int
	Reasons []string
}

// Name is the chosen implementation's name, "" without one.
func (c Choice) Name(spec *wire.InstanceSpec) string {
	if c.Index < 0 || c.Index >= len(spec.Implementations) {
		return ""
	}
	return spec.Implementations[c.Index].Name
}

// NoImplementationError says why no implementation of an overloaded
// service fits anywhere: one reason per implementation, in preference
// order. errors.Is(err, ErrNoFit) is true.
type NoImplementationError struct {
	Reasons []string
}

func (e *NoImplementationError) Error() string {
	return "no implementation fits: " + strings.Join(e.Reasons, "; ")
}

// Is makes errors.Is(err, ErrNoFit) true.
func (e *NoImplementationError) Is(target error) bool { return target == ErrNoFit }

// chooseImplementation tries the implementations of spec in order with
// pick, which places one single-implementation spec and names the
// candidate it chose. It returns the index of the chosen implementation,
// pick's results for it and the choice.
func chooseImplementation[P any](spec *wire.InstanceSpec, pick func(*wire.InstanceSpec) (P, string, error)) (P, Choice, error) {
	var zero P
	if len(spec.Implementations) == 0 {
		p, _, err := pick(spec)
		return p, Choice{Index: -1}, err
	}
	reasons := make([]string, len(spec.Implementations))
	for i := range spec.Implementations {
		name := implName(spec, i)
		v := spec.Implement(i)
		p, where, err := pick(&v)
		if errors.Is(err, ErrInvalidSpec) {
			return zero, Choice{Index: -1}, err
		}
		if err != nil {
			reasons[i] = name + ": " + err.Error()
			continue
		}
		reasons[i] = name + ": chosen (" + where + ")"
		for j := i + 1; j < len(reasons); j++ {
			reasons[j] = implName(spec, j) + ": not needed (" + name + " is preferred)"
		}
		return p, Choice{Index: i, Reasons: reasons}, nil
	}
	return zero, Choice{Index: -1, Reasons: reasons}, &NoImplementationError{Reasons: reasons}
}

// implName names implementation i for the reasons: its name and
// virtualization.
func implName(spec *wire.InstanceSpec, i int) string {
	im := &spec.Implementations[i]
	if im.Name == "" {
		return im.Virtualization
	}
	return im.Name + " (" + im.Virtualization + ")"
}
