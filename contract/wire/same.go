package wire

import "encoding/json"

// SameSpec reports whether two instance specs say the same thing on the
// wire: equal encodings, so that a nil and an empty list, or a field a
// peer does not know and its zero value, are the same. Every tier uses it
// to decide whether a changed desired set changes an instance. The
// JobGrant is not part of it: a new grant reaches a running instance
// without a restart.
func SameSpec(a, b InstanceSpec) bool {
	a.JobGrant, b.JobGrant = nil, nil
	a.Ended, b.Ended = "", "" // the cluster's word that it ended, not what it runs
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
