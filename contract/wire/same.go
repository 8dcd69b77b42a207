package wire

import "encoding/json"

// SameSpec reports whether two instance specs say the same thing on the
// wire: equal encodings, so that a nil and an empty list, or a field a
// peer does not know and its zero value, are the same. Every tier uses it
// to decide whether a changed desired set changes an instance.
func SameSpec(a, b InstanceSpec) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
