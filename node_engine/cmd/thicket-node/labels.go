package main

import (
	"fmt"

	"github.com/thicket-edge/thicket/contract/sla"
)

// labelFlags are the node's labels, which services' node selectors (an OAM
// placement trait's labels) match.
type labelFlags struct {
	Label map[string]string `name:"label" env:"THICKET_NODE_LABELS" placeholder:"KEY=VALUE" help:"A label of this node, reported to the cluster and the root, which services' node selectors match (repeatable; the environment variable takes KEY=VALUE;KEY=VALUE)."`
}

// labels checks the node's labels.
func (f *labelFlags) labels() (map[string]string, error) {
	if err := sla.CheckLabels(f.Label); err != nil {
		return nil, fmt.Errorf("--label: %w", err)
	}
	return f.Label, nil
}
