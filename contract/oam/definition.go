package oam

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/thicket-edge/thicket/contract/sla"
	"go.yaml.in/yaml/v3"
)

// KindComponentDefinition is the kind of a ComponentDefinition manifest.
const KindComponentDefinition = "ComponentDefinition"

// ComponentDefinition is one implementation of a base component (Flocky's
// BaseComponent overloading): several definitions that name the same
// spec.baseComponent are alternative builds of one service (a wasm
// module, an amd64 container, an arm64 unikernel). An Application
// component whose type is the base resolves to all of them, and the
// schedulers choose one per instance.
//
//	apiVersion: core.oam.dev/v1beta1
//	kind: ComponentDefinition
//	metadata:
//	  name: video-analytics-wasm
//	spec:
//	  baseComponent: video-analytics
//	  workload:
//	    type: worker            # webservice, worker (default) or task
//	    virtualization: wasm    # container, wasm or unikernel
//	    image: https://example.org/va.wasm
//	    sha256: 9f86d0…         # optional: the content's digest
//	    cmd: ["--fps", "5"]     # optional
//	    arch: [amd64, arm64]    # optional: architectures it runs on
//	    cpu: "250m"             # optional: else the component's
//	    memory: 64Mi            # optional: else the component's
type ComponentDefinition struct {
	Name           string
	Base           string
	Description    string
	Workload       string
	Virtualization string
	Image          string
	SHA256         string
	Cmd            []string
	Arch           []string
	MilliCPU       int64
	MemoryMB       int
}

// Code is the definition's code as the SLA carries it: the image with its
// digest pinned, when one is given (image@sha256:… for a container, the
// URL's #sha256=… fragment for wasm and unikernel code).
func (d *ComponentDefinition) Code() string {
	if d.SHA256 == "" {
		return d.Image
	}
	if d.Virtualization == sla.VirtContainer {
		return d.Image + "@sha256:" + d.SHA256
	}
	return d.Image + "#sha256=" + d.SHA256
}

// ManifestKind returns a manifest's top-level kind ("" when it has none or is not
// YAML): Application or ComponentDefinition tell the callers which parser
// to use.
func ManifestKind(data []byte) string {
	var top struct {
		Kind any `yaml:"kind"`
	}
	if err := yaml.Unmarshal(data, &top); err != nil {
		return ""
	}
	s, _ := top.Kind.(string)
	return s
}

// ParseComponentDefinition reads a ComponentDefinition manifest, YAML or
// JSON, strictly, with the same kind of errors as Parse.
func ParseComponentDefinition(data []byte) (*ComponentDefinition, error) {
	doc, err := decodeOne(data)
	if err != nil {
		return nil, err
	}
	w := &walker{}
	d := w.definition(doc)
	if len(w.errs) > 0 {
		return nil, w.errs
	}
	return d, nil
}

func (w *walker) definition(doc *yaml.Node) *ComponentDefinition {
	d := &ComponentDefinition{Workload: TypeWorker}
	root := doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		w.fail("", root, "the manifest must be an object, got %s", describe(root))
		return d
	}
	seen := w.object("", root, []field{
		{"apiVersion", func(p string, n *yaml.Node) {
			if v := w.str(p, n); v != "" && v != APIVersion {
				w.fail(p, n, "must be %s, got %q", APIVersion, v)
			}
		}},
		{"kind", func(p string, n *yaml.Node) {
			if v := w.str(p, n); v != "" && v != KindComponentDefinition {
				w.fail(p, n, "must be %s, got %q", KindComponentDefinition, v)
			}
		}},
		{"metadata", func(p string, n *yaml.Node) {
			s := w.object(p, n, []field{
				{"name", func(p string, n *yaml.Node) { d.Name = w.name(p, n) }},
				{"namespace", func(p string, n *yaml.Node) { w.name(p, n) }},
				{"labels", func(p string, n *yaml.Node) { w.stringMap(p, n) }},
				{"annotations", func(p string, n *yaml.Node) {
					d.Description = w.stringMap(p, n)["definition.oam.dev/description"]
				}},
			})
			w.required(p, n, s, "name")
		}},
		{"spec", func(p string, n *yaml.Node) {
			s := w.object(p, n, []field{
				{"baseComponent", func(p string, n *yaml.Node) {
					if d.Base = w.name(p, n); d.Base != "" {
						if _, builtin := componentTypes[d.Base]; builtin {
							w.fail(p, n, "%q is a built-in component type: choose another name for the base component", d.Base)
						}
					}
				}},
				{"description", func(p string, n *yaml.Node) { d.Description = w.str(p, n) }},
				{"workload", func(p string, n *yaml.Node) { w.workload(p, n, d) }},
			})
			w.required(p, n, s, "baseComponent", "workload")
		}},
	})
	w.required("", root, seen, "apiVersion", "kind", "metadata", "spec")
	return d
}

func (w *walker) workload(path string, n *yaml.Node, d *ComponentDefinition) {
	seen := w.object(path, n, []field{
		{"type", func(p string, n *yaml.Node) {
			v := w.str(p, n)
			if _, ok := componentTypes[v]; !ok && v != "" {
				w.fail(p, n, "%q is not a workload type: %s", v, strings.Join(ComponentTypeNames(), ", "))
				return
			}
			if v != "" {
				d.Workload = v
			}
		}},
		{"virtualization", func(p string, n *yaml.Node) {
			d.Virtualization = w.str(p, n)
			if v := d.Virtualization; v != "" && v != sla.VirtContainer && v != sla.VirtWasm && v != sla.VirtUnikernel {
				w.fail(p, n, "%q is not a virtualization: container, wasm or unikernel", v)
			}
		}},
		{"image", func(p string, n *yaml.Node) {
			if d.Image = w.str(p, n); d.Image == "" && len(w.errs) == 0 {
				w.fail(p, n, "must not be empty")
			}
		}},
		{"sha256", func(p string, n *yaml.Node) {
			v := strings.ToLower(strings.TrimPrefix(w.str(p, n), "sha256:"))
			if b, err := hex.DecodeString(v); err != nil || len(b) != 32 {
				w.fail(p, n, "must be 64 hexadecimal digits (the SHA-256 of the image or module)")
				return
			}
			d.SHA256 = v
		}},
		{"cmd", func(p string, n *yaml.Node) { d.Cmd = w.strs(p, n, nil) }},
		{"arch", func(p string, n *yaml.Node) {
			d.Arch = w.strs(p, n, func(p string, n *yaml.Node, s string) {
				if !slices.Contains(sla.Archs(), s) {
					w.fail(p, n, "%q is not a supported architecture: use one of %s", s, strings.Join(sla.Archs(), ", "))
				}
			})
		}},
		{"cpu", func(p string, n *yaml.Node) { d.MilliCPU = w.cpu(p, n) }},
		{"memory", func(p string, n *yaml.Node) { d.MemoryMB = w.memory(p, n) }},
	})
	w.required(path, n, seen, "virtualization", "image")
	if d.SHA256 != "" && d.Image != "" {
		switch {
		case d.Virtualization == sla.VirtContainer && strings.Contains(d.Image, "@"):
			w.fail(join(path, "sha256"), n, "the image names a digest already (%s)", d.Image)
		case d.Virtualization != sla.VirtContainer && (strings.Contains(d.Image, "#") || strings.Contains(d.Image, ",")):
			w.fail(join(path, "sha256"), n, "needs an image of one URL without a #fragment")
		}
	}
}

// Documents splits a YAML stream at its "---" lines into its non-empty
// documents, each as written.
func Documents(body []byte) [][]byte {
	var out [][]byte
	var cur bytes.Buffer
	flush := func() {
		if len(bytes.TrimSpace(cur.Bytes())) > 0 {
			out = append(out, bytes.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	for _, line := range bytes.SplitAfter(body, []byte("\n")) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) {
			flush()
			continue
		}
		cur.Write(line)
	}
	flush()
	return out
}
