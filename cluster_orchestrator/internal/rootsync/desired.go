package rootsync

import (
	"maps"
	"slices"
	"strings"

	"github.com/thicket-edge/thicket/contract/wire"
)

// desired is the cluster's desired set as the root's watch answers built it:
// a full set, then deltas on it.
type desired struct {
	epoch   string
	gen     int64
	specs   map[string]wire.InstanceSpec
	network wire.Network
	blocks  []string
}

// apply takes a watch answer and returns the whole desired set and network,
// and whether anything changed.
func (d *desired) apply(ans wire.ClusterDesired) ([]wire.InstanceSpec, wire.Network, bool) {
	changed := false
	if !ans.Delta || d.specs == nil || ans.Epoch != d.epoch {
		d.specs = make(map[string]wire.InstanceSpec, len(ans.Instances))
		changed = true
	}
	for _, k := range ans.Removed {
		if _, ok := d.specs[k]; ok {
			delete(d.specs, k)
			changed = true
		}
	}
	for _, s := range ans.Instances {
		d.specs[s.Key] = s
		changed = true
	}
	if !ans.NetworkUnchanged {
		d.network = ans.Network
		changed = true
	}
	d.epoch, d.gen = ans.Epoch, ans.Generation
	out := slices.SortedFunc(maps.Values(d.specs), func(a, b wire.InstanceSpec) int { return strings.Compare(a.Key, b.Key) })
	return out, d.network, changed
}
