package oam

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// component reads one component: its properties as its type defines them,
// then its traits, each checked against the component's type.
func (w *walker) component(path string, n *yaml.Node) Component {
	c := Component{Count: 1}
	var props, typeNode *yaml.Node
	var traits []*yaml.Node
	seen := w.object(path, n, []field{
		{"name", func(p string, n *yaml.Node) { c.Name = w.name(p, n) }},
		{"type", func(p string, n *yaml.Node) { c.Type, typeNode = w.str(p, n), n }},
		{"properties", func(p string, n *yaml.Node) { props = n }},
		{"traits", func(p string, n *yaml.Node) {
			w.list(p, n, maxTraits, func(_ string, _ int, n *yaml.Node) { traits = append(traits, n) })
		}},
	})
	w.required(path, n, seen, "name", "type", "properties")
	ct, known := componentTypes[c.Type]
	workload := c.Type
	if defs := w.defs[c.Type]; !known && len(defs) > 0 {
		// A base component: its definitions' workload type, whose
		// properties but image apply (the definitions hold the code).
		c.Implementations, workload = slices.Clone(defs), defs[0].Workload
		ct, known = componentTypes[workload], true
		ct.Properties = slices.DeleteFunc(slices.Clone(ct.Properties), func(p string) bool { return p == "image" })
	}
	if c.Type != "" && !known {
		w.fail(join(path, "type"), typeNode, "component type %q is not supported (supported: %s; a base component exists once a ComponentDefinition names it)", c.Type, strings.Join(w.typeNames(), ", "))
		return c
	}
	if props != nil && known {
		w.properties(join(path, "properties"), props, &c, ct, c.Implementations == nil)
	}
	for i, t := range traits {
		tp := index(join(path, "traits"), i)
		tr := w.trait(tp, t, workload)
		if tr.Type == "" {
			continue
		}
		for _, prev := range c.Traits {
			if canonical(prev.Type) == canonical(tr.Type) {
				w.fail(join(tp, "type"), t, "trait %s is given twice on this component", tr.Type)
			}
		}
		c.Traits = append(c.Traits, tr)
		if tr.Runtime != nil {
			w.runtime(join(tp, "properties.prefer"), t, &c, tr.Runtime)
		}
	}
	return c
}

// runtime applies a runtime trait's preference order: to a base
// component's implementations, which it orders and restricts to the
// virtualizations it names; a component of a built-in type has one
// implementation, so it may name one.
func (w *walker) runtime(path string, n *yaml.Node, c *Component, r *Runtime) {
	if c.Implementations == nil {
		if len(r.Prefer) > 1 {
			w.fail(path, n, "names %d runtimes, but a %s component has one implementation: choosing among several needs a base component with a ComponentDefinition per implementation", len(r.Prefer), c.Type)
		}
		return
	}
	var ordered []ComponentDefinition
	for _, v := range r.Prefer {
		for _, d := range c.Implementations {
			if d.Virtualization == v {
				ordered = append(ordered, d)
			}
		}
	}
	if len(ordered) == 0 {
		var have []string
		for _, d := range c.Implementations {
			if !slices.Contains(have, d.Virtualization) {
				have = append(have, d.Virtualization)
			}
		}
		w.fail(path, n, "base component %s has no implementation of %s (it has %s)", c.Type, strings.Join(r.Prefer, ", "), strings.Join(have, ", "))
		return
	}
	c.Implementations = ordered
}

// typeNames lists the component types a component may name: the built-in
// ones and the caller's base components.
func (w *walker) typeNames() []string {
	names := ComponentTypeNames()
	for _, b := range slices.Sorted(maps.Keys(w.defs)) {
		names = append(names, b+" (base component)")
	}
	return names
}

// properties reads a component's properties; which are known depends on
// its type.
func (w *walker) properties(path string, n *yaml.Node, c *Component, ct ComponentType, needImage bool) {
	all := []field{
		{"image", func(p string, n *yaml.Node) {
			if c.Image = w.str(p, n); c.Image == "" && len(w.errs) == 0 {
				w.fail(p, n, "must not be empty")
			}
		}},
		{"cmd", func(p string, n *yaml.Node) { c.Cmd = w.strs(p, n, nil) }},
		{"args", func(p string, n *yaml.Node) { c.Args = w.strs(p, n, nil) }},
		{"env", func(p string, n *yaml.Node) { c.Env = w.envList(p, n) }},
		{"ports", func(p string, n *yaml.Node) {
			w.list(p, n, 50, func(p string, _ int, n *yaml.Node) { c.Ports = append(c.Ports, w.port(p, n)) })
		}},
		{"cpu", func(p string, n *yaml.Node) { c.MilliCPU = w.cpu(p, n) }},
		{"memory", func(p string, n *yaml.Node) { c.MemoryMB = w.memory(p, n) }},
		{"count", func(p string, n *yaml.Node) { c.Count = w.integer(p, n, 1, maxReplicas) }},
		{"restart", func(p string, n *yaml.Node) {
			if v := w.str(p, n); v != "" && v != "Never" {
				w.fail(p, n, "%q is not supported: a task runs once and is not restarted (use Never)", v)
			}
		}},
	}
	var fields []field
	for _, f := range all {
		if slices.Contains(ct.Properties, f.name) {
			fields = append(fields, f)
		}
	}
	seen := w.object(path, n, fields)
	if needImage {
		w.required(path, n, seen, "image")
	}
	ports := map[string]int{}
	for i, p := range c.Ports {
		k := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if j, dup := ports[k]; dup && p.Port != 0 {
			w.fail(index(join(path, "ports"), i), nil, "port %s is listed twice (already at ports[%d])", k, j)
		}
		ports[k] = i
	}
}

func (w *walker) port(path string, n *yaml.Node) Port {
	pt := Port{Protocol: "tcp"}
	seen := w.object(path, n, []field{
		{"port", func(p string, n *yaml.Node) { pt.Port = w.integer(p, n, 1, 65535) }},
		{"protocol", func(p string, n *yaml.Node) {
			switch v := w.str(p, n); strings.ToUpper(v) {
			case "TCP", "UDP":
				pt.Protocol = strings.ToLower(v)
			case "":
			default:
				w.fail(p, n, "%q is not supported: TCP or UDP", v)
			}
		}},
		{"expose", func(p string, n *yaml.Node) { pt.Expose = w.boolean(p, n) }},
		// A port's name labels it in Kubernetes; it means nothing here.
		{"name", func(p string, n *yaml.Node) { w.str(p, n) }},
	})
	w.required(path, n, seen, "port")
	return pt
}

// envList reads KubeVela's env property: a list of {name, value}.
func (w *walker) envList(path string, n *yaml.Node) []EnvVar {
	var out []EnvVar
	w.list(path, n, 200, func(p string, _ int, n *yaml.Node) {
		var e EnvVar
		seen := w.object(p, n, []field{
			{"name", func(p string, n *yaml.Node) { e.Name = w.envName(p, n, w.str(p, n)) }},
			{"value", func(p string, n *yaml.Node) { e.Value = w.envValue(p, n) }},
		})
		w.required(p, n, seen, "name")
		out = append(out, e)
	})
	return out
}

func (w *walker) envName(path string, n *yaml.Node, s string) string {
	if s != "" && (len(s) > 256 || !envName.MatchString(s)) {
		w.fail(path, n, "%q is not a valid environment variable name", s)
		return ""
	}
	return s
}

func (w *walker) envValue(path string, n *yaml.Node) string {
	v := w.scalar(path, n)
	if strings.ContainsRune(v, 0) {
		w.fail(path, n, "must not contain a NUL character")
	}
	return v
}

// quantity reads a number or a string holding one (KubeVela writes cpu and
// memory as strings, YAML users often as numbers).
func (w *walker) quantity(path string, n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float") {
		w.fail(path, n, "must be a quantity such as \"0.5\", \"500m\" or \"512Mi\", got %s", describe(n))
		return "", false
	}
	return strings.TrimSpace(n.Value), true
}

// cpu reads a CPU quantity: cores ("0.5", 2) or millicores ("500m").
func (w *walker) cpu(path string, n *yaml.Node) int64 {
	s, ok := w.quantity(path, n)
	if !ok {
		return 0
	}
	milli := strings.HasSuffix(s, "m")
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "m"), 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		w.fail(path, n, "%q is not a CPU quantity: cores (\"0.5\", \"2\") or millicores (\"500m\")", s)
		return 0
	}
	if !milli {
		f *= 1000
	}
	if f > 1024*1000 {
		w.fail(path, n, "%q is more than 1024 CPUs", s)
		return 0
	}
	return int64(math.Ceil(f))
}

// memorySuffixes are the Kubernetes quantity suffixes, in bytes.
var memorySuffixes = []struct {
	suffix string
	bytes  float64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
}

// memory reads a memory quantity ("512Mi", "1Gi", "1G"; a bare number is
// bytes) as MiB, rounded up.
func (w *walker) memory(path string, n *yaml.Node) int {
	s, ok := w.quantity(path, n)
	if !ok {
		return 0
	}
	num, unit := s, 1.0
	for _, x := range memorySuffixes {
		if strings.HasSuffix(s, x.suffix) {
			num, unit = strings.TrimSuffix(s, x.suffix), x.bytes
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		w.fail(path, n, "%q is not a memory quantity such as \"512Mi\" or \"1Gi\"", s)
		return 0
	}
	mb := math.Ceil(f * unit / (1 << 20))
	if mb > 1<<20 {
		w.fail(path, n, "%q is more than 1 TiB", s)
		return 0
	}
	return int(mb)
}
