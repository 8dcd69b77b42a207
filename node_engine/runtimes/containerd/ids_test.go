package containerd

import (
	"strings"
	"testing"

	"github.com/containerd/containerd/identifiers"
)

func TestContainerID(t *testing.T) {
	long := strings.Repeat("a", 100)
	for _, tc := range []struct {
		node, key, want string
	}{
		{"worker1", "svc.0", "worker1_svc.0"},
		{"edge-node-3", "64b7f0c2a1e3d4f5a6b7c8d9.12", "edge-node-3_64b7f0c2a1e3d4f5a6b7c8d9.12"},
		{"node_a", "svc.0", ""},
		{"node.local", "svc.0", ""},
		{"n", "my svc/ü.1", ""},
		{"-", "..", ""},
		{long, long + ".1", ""},
		{"", "", ""},
	} {
		id := ContainerID(tc.node, tc.key)
		if err := identifiers.Validate(id); err != nil {
			t.Errorf("ContainerID(%q, %q) = %q: %v", tc.node, tc.key, id, err)
		}
		if tc.want != "" && id != tc.want {
			t.Errorf("ContainerID(%q, %q) = %q, want %q", tc.node, tc.key, id, tc.want)
		}
		if tc.want == "" && strings.Count(id, "_") != 2 {
			t.Errorf("ContainerID(%q, %q) = %q: a sanitised id must have two '_'", tc.node, tc.key, id)
		}
	}
}

// Different (node, key) pairs never share an id, whether clean or not.
func TestContainerIDUnique(t *testing.T) {
	parts := []string{"a", "b", "a_b", "a-b", "a.b", "b_c", "a b", "A", "a.0", "b.0", "b_c.0", "c.0", "a--b", ""}
	seen := map[string][2]string{}
	for _, n := range parts {
		for _, k := range parts {
			id := ContainerID(n, k)
			if prev, ok := seen[id]; ok {
				t.Errorf("ContainerID(%q, %q) = ContainerID(%q, %q) = %q", n, k, prev[0], prev[1], id)
			}
			seen[id] = [2]string{n, k}
		}
	}
}

func FuzzContainerID(f *testing.F) {
	f.Add("worker1", "svc.0")
	f.Add("node_a", "x y.1")
	f.Fuzz(func(t *testing.T, node, key string) {
		id := ContainerID(node, key)
		if err := identifiers.Validate(id); err != nil {
			t.Fatalf("ContainerID(%q, %q) = %q: %v", node, key, id, err)
		}
		if h := hostname(key); len(h) > 63 || h == "" {
			t.Fatalf("hostname(%q) = %q", key, h)
		}
	})
}

func TestHostname(t *testing.T) {
	for key, want := range map[string]string{
		"web.0":                        "web-0",
		"64B7f0c2.12":                  "64b7f0c2-12",
		"a_b.1":                        "a-b-1",
		strings.Repeat("x", 80) + ".1": strings.Repeat("x", 63),
	} {
		if got := hostname(key); got != want {
			t.Errorf("hostname(%q) = %q, want %q", key, got, want)
		}
	}
}
