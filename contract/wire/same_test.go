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

// A new grant is no new spec (it must not restart the instance); a new
// job list from the root is (the cluster must see it).
func TestSameSpecIgnoresJobGrant(t *testing.T) {
	a := wire.InstanceSpec{Key: "s.0", Code: "c", JobGrant: &wire.JobGrant{Version: 1, Jobs: []string{"a"}}}
	b := a
	b.JobGrant = &wire.JobGrant{Version: 2, Jobs: []string{"b"}, PoolSize: 3}
	if !wire.SameSpec(a, b) {
		t.Errorf("specs differing only in their grants differ")
	}
	b.JobGrant = nil
	if !wire.SameSpec(a, b) {
		t.Errorf("a spec with a grant differs from one without")
	}
	b.Jobs = []string{"a"}
	if wire.SameSpec(a, b) {
		t.Errorf("a changed job list is the same spec")
	}
	if a.JobGrant == nil || a.JobGrant.Version != 1 {
		t.Errorf("SameSpec changed its argument's grant")
	}
}
