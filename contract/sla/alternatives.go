package sla

import (
	"fmt"
	"strconv"
)

// MaxAlternatives bounds a microservice's alternatives.
const MaxAlternatives = 8

// Implementation is another way to run a microservice (a Thicket
// extension, what an OAM base component with several ComponentDefinitions
// becomes): its own virtualization, code, architectures, command and
// resources. A microservice's own fields are its preferred
// implementation (named by ImplementationName); its alternatives follow
// in preference order. Per instance, the cluster runs the first one that a
// node can run (virtualization available, architecture matches, resources
// fit) and the instance's status says which and why not the others.
// Memory and VCPUs 0 mean the microservice's; Cmd empty means none.
type Implementation struct {
	Name           string   `json:"name"`
	Virtualization string   `json:"virtualization"`
	Code           string   `json:"code"`
	Arch           []string `json:"arch,omitempty"`
	Cmd            []string `json:"cmd,omitempty"`
	Memory         int      `json:"memory,omitempty"` // MB
	VCPUs          int      `json:"vcpus,omitempty"`
}

// Implementations lists all of a microservice's implementations, its own
// first, with resources resolved; nil when it has no alternatives. An
// implementation without a name is named by its virtualization.
func (m *Microservice) Implementations() []Implementation {
	if len(m.Alternatives) == 0 {
		return nil
	}
	name := m.ImplementationName
	if name == "" {
		name = m.Virtualization
	}
	out := []Implementation{{Name: name, Virtualization: m.Virtualization, Code: m.Code, Arch: m.Arch, Cmd: m.Cmd,
		Memory: m.Memory, VCPUs: m.VCPUs}}
	for _, a := range m.Alternatives {
		if a.Name == "" {
			a.Name = a.Virtualization
		}
		if a.Memory == 0 {
			a.Memory = m.Memory
		}
		if a.VCPUs == 0 {
			a.VCPUs = m.VCPUs
		}
		out = append(out, a)
	}
	return out
}

// alternatives checks a microservice's alternatives.
func (v *validator) alternatives(path string, m *Microservice) {
	if len(m.Alternatives) == 0 {
		return
	}
	if len(m.Alternatives) > MaxAlternatives {
		v.errs.add(join(path, "alternatives"), fmt.Sprintf("has %d entries, at most %d are allowed", len(m.Alternatives), MaxAlternatives))
		return
	}
	names := map[string]string{}
	first := m.ImplementationName
	if first == "" {
		first = m.Virtualization
	}
	names[first] = join(path, "implementation_name")
	for i := range m.Alternatives {
		a := &m.Alternatives[i]
		p := join(path, "alternatives["+strconv.Itoa(i)+"]")
		f := func(name string) string { return join(p, name) }
		name := a.Name
		if name == "" {
			name = a.Virtualization
		}
		if len(name) > 63 {
			v.errs.add(f("name"), "is longer than 63 characters")
		}
		if prev, dup := names[name]; dup {
			v.errs.add(f("name"), fmt.Sprintf("%q names another implementation already (%s): give each a name of its own", name, prev))
		}
		names[name] = f("name")
		switch a.Virtualization {
		case VirtContainer, VirtUnikernel, VirtWasm:
			v.code(f("code"), a.Virtualization, a.Code)
		case "":
			v.errs.add(f("virtualization"), "is required: container, unikernel or wasm")
		default:
			v.errs.add(f("virtualization"), fmt.Sprintf("%q is not supported: use container, unikernel or wasm", a.Virtualization))
		}
		for j, x := range a.Arch {
			if !isArch(x) {
				v.errs.add(f("arch["+strconv.Itoa(j)+"]"), fmt.Sprintf("%q is not a supported architecture", x))
			}
		}
		v.resource(f("memory"), a.Memory, maxMemory)
		v.resource(f("vcpus"), a.VCPUs, maxVCPUs)
	}
}
