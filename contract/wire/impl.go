package wire

import "slices"

// Implementation is one complete way to run a service's code: a ComponentDefinition
// of an OAM base component (overloading, as Flocky's BaseComponent), or an
// entry of an SLA microservice's implementations. An InstanceSpec with
// Implementations lists them in preference order; its own Virtualization,
// Code, Arch, Cmd and Resources are the first one's, so that a tier that
// predates the field runs that one.
type Implementation struct {
	// Name names it for people (the ComponentDefinition's name).
	Name           string   `json:"name"`
	Virtualization string   `json:"virtualization"`
	Code           string   `json:"code"`
	Arch           []string `json:"arch,omitempty"`
	Cmd            []string `json:"cmd,omitempty"`
	// Resources are what an instance of this implementation asks for.
	Resources Resources `json:"resources"`
}

// Implement returns the spec as it runs with implementation i of its
// Implementations: a single-implementation spec, which is what a node is
// given. An index out of range returns the spec without its alternatives
// (its own fields are the first implementation's).
func (s InstanceSpec) Implement(i int) InstanceSpec {
	if i < 0 || i >= len(s.Implementations) {
		s.Implementations = nil
		return s
	}
	im := s.Implementations[i]
	s.Implementations = nil
	s.Virtualization, s.Code = im.Virtualization, im.Code
	s.Arch, s.Cmd = slices.Clone(im.Arch), slices.Clone(im.Cmd)
	s.Resources = im.Resources
	return s
}

// ImplementationIndex is the index of the implementation called name, or
// -1.
func (s *InstanceSpec) ImplementationIndex(name string) int {
	return slices.IndexFunc(s.Implementations, func(im Implementation) bool { return im.Name == name })
}
