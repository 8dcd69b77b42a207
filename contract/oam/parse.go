package oam

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/thicket-edge/thicket/contract/sla"
	"go.yaml.in/yaml/v3"
)

// MaxManifest is the largest manifest Parse reads, in bytes.
const MaxManifest = 1 << 20

// Limits, as sanity caps.
const (
	maxComponents = 100
	maxTraits     = 20
	maxReplicas   = 1000
)

// dnsLabel is what metadata.name, component, policy and step names must
// match (Kubernetes' DNS label, as KubeVela requires).
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// envName is what environment variable names must match.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// IsManifest reports whether a document is an OAM manifest rather than an
// SLA: it declares an apiVersion or a kind at its top level (an SLA has
// neither). It looks only at the top-level keys; Parse checks the rest.
func IsManifest(data []byte) bool {
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		return false
	}
	_, v := top["apiVersion"]
	_, k := top["kind"]
	return v || k
}

// Parse reads an OAM Application manifest, YAML or JSON, strictly: unknown
// fields, wrong types, unknown component, trait, policy and step types, a
// trait on a component type it does not apply to and references to
// missing policies are errors. It returns sla.Errors listing every problem,
// each with its field path and line.
func Parse(data []byte) (*Application, error) { return ParseWith(data, nil) }

// ParseWith is Parse with the caller's ComponentDefinitions: a component
// whose type is one of their base components takes the properties of
// their workload type, except image (the definitions have theirs), and
// resolves to all of them (Component.Implementations).
func ParseWith(data []byte, defs Catalog) (*Application, error) {
	doc, err := decodeOne(data)
	if err != nil {
		return nil, err
	}
	w := &walker{defs: defs}
	app := w.application(doc)
	if len(w.errs) > 0 {
		return nil, w.errs
	}
	return app, nil
}

// decodeOne reads a manifest of one YAML (or JSON) document, at most
// MaxManifest bytes.
func decodeOne(data []byte) (*yaml.Node, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, sla.Errors{{Message: "the manifest is empty"}}
	}
	if len(data) > MaxManifest {
		return nil, sla.Errors{{Message: fmt.Sprintf("the manifest is larger than %d bytes", MaxManifest)}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, sla.Errors{{Message: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, sla.Errors{{Message: "the manifest must hold one document (found a second one, or invalid YAML after the first)"}}
	}
	return &doc, nil
}

// walker collects errors while it reads the document's nodes.
type walker struct {
	errs sla.Errors
	defs Catalog
}

func (w *walker) fail(path string, n *yaml.Node, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if n != nil && n.Line > 0 {
		msg += fmt.Sprintf(" (line %d)", n.Line)
	}
	w.errs = append(w.errs, &sla.FieldError{Field: path, Message: msg})
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// describe names a node's type for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!str":
		return "a string"
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	}
	return "a " + strings.TrimPrefix(n.Tag, "!!")
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// field is one known key of an object and what reads its value.
type field struct {
	name string
	read func(path string, n *yaml.Node)
}

// object reads a mapping node: each known key with its reader, in the
// order of the document; unknown and repeated keys are errors. It returns
// the keys present. A null object is an empty one.
func (w *walker) object(path string, n *yaml.Node, fields []field) map[string]bool {
	seen := map[string]bool{}
	if isNull(n) {
		return seen
	}
	if n.Kind != yaml.MappingNode {
		w.fail(path, n, "must be an object, got %s", describe(n))
		return seen
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.fail(path, k, "keys must be strings")
			continue
		}
		p := join(path, k.Value)
		if seen[k.Value] {
			w.fail(p, k, "is given twice")
			continue
		}
		seen[k.Value] = true
		j := slices.IndexFunc(fields, func(f field) bool { return f.name == k.Value })
		if j < 0 {
			names := make([]string, len(fields))
			for i, f := range fields {
				names[i] = f.name
			}
			w.fail(p, k, "unknown field (known here: %s)", strings.Join(names, ", "))
			continue
		}
		if v.Kind == yaml.AliasNode {
			w.fail(p, v, "YAML aliases are not supported")
			continue
		}
		if fields[j].read != nil {
			fields[j].read(p, v)
		}
	}
	return seen
}

// list reads a sequence node, calling item for each element. A null list
// is an empty one.
func (w *walker) list(path string, n *yaml.Node, max int, item func(path string, i int, n *yaml.Node)) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		w.fail(path, n, "must be a list, got %s", describe(n))
		return
	}
	if len(n.Content) > max {
		w.fail(path, n, "has %d entries, at most %d are allowed", len(n.Content), max)
		return
	}
	for i, e := range n.Content {
		if e.Kind == yaml.AliasNode {
			w.fail(index(path, i), e, "YAML aliases are not supported")
			continue
		}
		item(index(path, i), i, e)
	}
}

// str reads a string.
func (w *walker) str(path string, n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		w.fail(path, n, "must be a string, got %s", describe(n))
		return ""
	}
	return n.Value
}

// scalar reads a string, number or boolean as text (environment values).
func (w *walker) scalar(path string, n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		w.fail(path, n, "must be a string, got %s", describe(n))
		return ""
	}
	return n.Value
}

// integer reads an integer within [lo, hi].
func (w *walker) integer(path string, n *yaml.Node, lo, hi int) int {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		w.fail(path, n, "must be an integer, got %s", describe(n))
		return 0
	}
	v, err := strconv.ParseInt(n.Value, 0, 64)
	if err != nil || v < int64(lo) || v > int64(hi) {
		w.fail(path, n, "must be an integer from %d to %d, got %s", lo, hi, n.Value)
		return 0
	}
	return int(v)
}

func (w *walker) boolean(path string, n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		w.fail(path, n, "must be true or false, got %s", describe(n))
		return false
	}
	b, _ := strconv.ParseBool(strings.ToLower(n.Value))
	return b
}

// strings reads a list of strings, each checked by ok (nil: any).
func (w *walker) strs(path string, n *yaml.Node, ok func(path string, n *yaml.Node, s string)) []string {
	out := []string{}
	w.list(path, n, 100, func(p string, _ int, e *yaml.Node) {
		s := w.str(p, e)
		if ok != nil && s != "" {
			ok(p, e, s)
		}
		out = append(out, s)
	})
	return out
}

// name reads a DNS-label name.
func (w *walker) name(path string, n *yaml.Node) string {
	s := w.str(path, n)
	if s != "" && (len(s) > 63 || !dnsLabel.MatchString(s)) {
		w.fail(path, n, "%q is not a valid name: lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit", s)
		return ""
	}
	return s
}

func (w *walker) required(path string, n *yaml.Node, seen map[string]bool, names ...string) {
	for _, name := range names {
		if !seen[name] && !isNull(n) && n.Kind == yaml.MappingNode {
			w.fail(join(path, name), n, "is required")
		}
	}
}

func (w *walker) application(doc *yaml.Node) *Application {
	app := &Application{}
	root := doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		w.fail("", root, "the manifest must be an object, got %s", describe(root))
		return app
	}
	var specNode *yaml.Node
	seen := w.object("", root, []field{
		{"apiVersion", func(p string, n *yaml.Node) {
			if v := w.str(p, n); v != "" && v != APIVersion {
				w.fail(p, n, "must be %s, got %q", APIVersion, v)
			}
		}},
		{"kind", func(p string, n *yaml.Node) {
			if v := w.str(p, n); v != "" && v != Kind {
				w.fail(p, n, "must be %s, got %q (a ComponentDefinition is registered at /api/oam/componentdefinitions, or with thicket apply -f)", Kind, v)
			}
		}},
		{"metadata", func(p string, n *yaml.Node) {
			s := w.object(p, n, []field{
				{"name", func(p string, n *yaml.Node) { app.Name = w.name(p, n) }},
				{"namespace", func(p string, n *yaml.Node) { app.Namespace = w.name(p, n) }},
				// Labels and annotations are kept in the stored manifest
				// and mean nothing to Thicket.
				{"labels", func(p string, n *yaml.Node) { w.stringMap(p, n) }},
				{"annotations", func(p string, n *yaml.Node) { w.stringMap(p, n) }},
			})
			w.required(p, n, s, "name")
		}},
		{"spec", func(p string, n *yaml.Node) { specNode = n; w.spec(p, n, app) }},
	})
	w.required("", root, seen, "apiVersion", "kind", "metadata", "spec")
	if specNode != nil {
		w.crossCheck(app)
	}
	return app
}

// stringMap reads an object of strings.
func (w *walker) stringMap(path string, n *yaml.Node) map[string]string {
	out := map[string]string{}
	if isNull(n) {
		return out
	}
	if n.Kind != yaml.MappingNode {
		w.fail(path, n, "must be an object, got %s", describe(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		if _, dup := out[k.Value]; dup {
			w.fail(p, k, "is given twice")
			continue
		}
		out[k.Value] = w.scalar(p, v)
	}
	return out
}

func (w *walker) spec(path string, n *yaml.Node, app *Application) {
	seen := w.object(path, n, []field{
		{"components", func(p string, n *yaml.Node) {
			w.list(p, n, maxComponents, func(p string, _ int, n *yaml.Node) {
				app.Components = append(app.Components, w.component(p, n))
			})
		}},
		{"policies", func(p string, n *yaml.Node) {
			w.list(p, n, 20, func(p string, _ int, n *yaml.Node) { app.Policies = append(app.Policies, w.policy(p, n)) })
		}},
		{"workflow", func(p string, n *yaml.Node) {
			w.object(p, n, []field{{"steps", func(p string, n *yaml.Node) {
				w.list(p, n, 50, func(p string, _ int, n *yaml.Node) { app.Steps = append(app.Steps, w.step(p, n)) })
			}}})
		}},
	})
	w.required(path, n, seen, "components")
	if seen["components"] && len(app.Components) == 0 && len(w.errs) == 0 {
		w.fail(join(path, "components"), n, "must contain at least one component")
	}
}

func (w *walker) policy(path string, n *yaml.Node) Policy {
	var pol Policy
	var props *yaml.Node
	seen := w.object(path, n, []field{
		{"name", func(p string, n *yaml.Node) { pol.Name = w.name(p, n) }},
		{"type", func(p string, n *yaml.Node) { pol.Type = w.str(p, n) }},
		{"properties", func(p string, n *yaml.Node) { props = n }},
	})
	w.required(path, n, seen, "name", "type")
	switch pol.Type {
	case "":
	case PolicyTopology:
		if props != nil {
			w.object(join(path, "properties"), props, []field{
				{"clusters", func(p string, n *yaml.Node) { pol.Clusters = w.strs(p, n, w.clusterName) }},
				// Thicket has no namespaces on its nodes: accepted for
				// KubeVela manifests, without effect (README).
				{"namespace", func(p string, n *yaml.Node) { w.str(p, n) }},
			})
		}
	case PolicyIsolation:
		if props == nil {
			props = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line}
		}
		pp := join(path, "properties")
		seen := w.object(pp, props, []field{{"unit", func(p string, n *yaml.Node) {
			switch pol.Unit = w.str(p, n); pol.Unit {
			case sla.IsolationUser, sla.IsolationApplication, "":
			default:
				w.fail(p, n, "%q is not a unit of isolation: %s or %s", pol.Unit, sla.IsolationUser, sla.IsolationApplication)
			}
		}}})
		w.required(pp, props, seen, "unit")
	default:
		w.fail(join(path, "type"), n, "policy type %q is not supported (supported: %s, %s)", pol.Type, PolicyTopology, PolicyIsolation)
	}
	return pol
}

func (w *walker) step(path string, n *yaml.Node) Step {
	var st Step
	var props *yaml.Node
	seen := w.object(path, n, []field{
		{"name", func(p string, n *yaml.Node) { st.Name = w.name(p, n) }},
		{"type", func(p string, n *yaml.Node) { st.Type = w.str(p, n) }},
		{"properties", func(p string, n *yaml.Node) { props = n }},
	})
	w.required(path, n, seen, "name", "type")
	switch st.Type {
	case "":
	case StepDeploy:
		if props != nil {
			w.object(join(path, "properties"), props, []field{
				{"policies", func(p string, n *yaml.Node) { st.Policies = w.strs(p, n, nil) }},
			})
		}
	case StepApply:
		pp := join(path, "properties")
		if props == nil {
			w.fail(join(pp, "component"), n, "is required")
			break
		}
		seen := w.object(pp, props, []field{
			{"component", func(p string, n *yaml.Node) { st.Component = w.str(p, n) }},
		})
		w.required(pp, props, seen, "component")
	default:
		w.fail(join(path, "type"), n, "workflow step type %q is not supported (supported: %s, %s)", st.Type, StepDeploy, StepApply)
	}
	return st
}

// clusterName checks a cluster or node name.
func (w *walker) clusterName(path string, n *yaml.Node, s string) {
	if len(s) > 64 || strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != "" {
		w.fail(path, n, "%q is not a valid name: letters, digits, '_', '.' and '-', at most 64", s)
	}
}

// crossCheck checks what spans several parts: unique names, the policies
// workflow steps name.
func (w *walker) crossCheck(app *Application) {
	unique := func(what string, path func(i int) string, names []string) {
		first := map[string]int{}
		for i, n := range names {
			if n == "" {
				continue
			}
			if j, dup := first[n]; dup {
				w.fail(path(i), nil, "duplicate %s name %q (already used by %s)", what, n, path(j))
			} else {
				first[n] = i
			}
		}
	}
	var names []string
	for _, c := range app.Components {
		names = append(names, c.Name)
	}
	unique("component", func(i int) string { return index("spec.components", i) + ".name" }, names)
	names = names[:0]
	for _, p := range app.Policies {
		names = append(names, p.Name)
	}
	unique("policy", func(i int) string { return index("spec.policies", i) + ".name" }, names)
	names = names[:0]
	for _, s := range app.Steps {
		names = append(names, s.Name)
	}
	unique("step", func(i int) string { return index("spec.workflow.steps", i) + ".name" }, names)
	applied := map[string]bool{}
	deploys := false
	for i, s := range app.Steps {
		// An unknown step type is an error already: it might have deployed.
		deploys = deploys || s.Type != StepApply
		if s.Component == "" {
			continue
		}
		p := fmt.Sprintf("spec.workflow.steps[%d].properties.component", i)
		if !slices.ContainsFunc(app.Components, func(c Component) bool { return c.Name == s.Component }) {
			w.fail(p, nil, "names no component of spec.components: %q", s.Component)
		} else if applied[s.Component] {
			w.fail(p, nil, "component %q is applied by an earlier step already", s.Component)
		}
		applied[s.Component] = true
	}
	if len(app.Steps) > 0 && !deploys {
		for i, c := range app.Components {
			if c.Name != "" && !applied[c.Name] {
				w.fail(index("spec.components", i)+".name", nil, "component %q is deployed by no workflow step (add an apply-component or a deploy step)", c.Name)
			}
		}
	}
	for i, s := range app.Steps {
		for j, name := range s.Policies {
			if k := slices.IndexFunc(app.Policies, func(p Policy) bool { return p.Name == name }); k < 0 {
				w.fail(fmt.Sprintf("spec.workflow.steps[%d].properties.policies[%d]", i, j), nil, "names no policy of spec.policies: %q", name)
			}
		}
	}
}
