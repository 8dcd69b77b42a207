package wire_test

import (
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// A runtime holding an instance of a's spec leaves it alone on Start(b),
// and replaces it otherwise; the cluster republishes a node's set only for
// a changed spec.
func TestSameSpec(t *testing.T) {
	a := wire.InstanceSpec{Key: "s.0", Code: "c", Environment: []string{"A=1"}, Labels: map[string]string{"x": "1", "y": "2"}}
	b := a
	b.Labels = map[string]string{"y": "2", "x": "1"}
	if !wire.SameSpec(a, b) {
		t.Errorf("equal specs differ")
	}
	b.Environment = []string{"A=2"}
	if wire.SameSpec(a, b) {
		t.Errorf("different environments are the same")
	}
}
