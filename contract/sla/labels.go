package sla

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
)

// Node labels (thicket-node --label key=value) describe a node; a
// microservice's node_selector (an OAM placement trait's labels) lists
// labels a node must have, every one with its value, to run its
// instances.

// MaxLabels bounds a node's labels and a node selector.
const MaxLabels = 32

var (
	labelKey   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$`)
	labelValue = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$`)
)

// CheckLabels says what is wrong with a set of labels, or nil: at most
// MaxLabels, keys of letters, digits, '.', '_', '-' and '/' (1 to 63,
// starting and ending with a letter or digit), values of letters, digits,
// '.', '_' and '-' (at most 63, empty allowed).
func CheckLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return fmt.Errorf("has %d labels, at most %d are allowed", len(labels), MaxLabels)
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if !labelKey.MatchString(k) {
			return fmt.Errorf("label key %q: letters, digits, '.', '_', '-' and '/', 1 to 63, starting and ending with a letter or digit", k)
		}
		if v := labels[k]; !labelValue.MatchString(v) {
			return fmt.Errorf("label %s: value %q: letters, digits, '.', '_' and '-', at most 63, starting and ending with a letter or digit", k, v)
		}
	}
	return nil
}
