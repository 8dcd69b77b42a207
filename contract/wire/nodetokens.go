package wire

import "time"

// NodeToken is a node join token the root issued for a cluster, as the
// cluster needs it to admit nodes: the SHA-256 (hex) of its secret, never
// the secret.
type NodeToken struct {
	// ID names the token: the first 8 hex digits of Hash.
	ID   string `json:"id"`
	Hash string `json:"hash"`
	// ExpiresAt: the token admits no node from then on; absent: never.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// SingleUse: it admits one node; the cluster records the use at once
	// and refuses a second one even before the root learns of it.
	SingleUse bool `json:"single_use,omitempty"`
	// NodeName: it admits only a node of that name.
	NodeName string `json:"node_name,omitempty"`
	// UsedAt and UsedBy: the root learnt that the single-use token was
	// used, when and by which node.
	UsedAt *time.Time `json:"used_at,omitempty"`
	UsedBy string     `json:"used_by,omitempty"`
}

// NodeTokenUse tells the root that a single-use node token was used.
type NodeTokenUse struct {
	ID   string    `json:"id"`
	Node string    `json:"node"`
	At   time.Time `json:"at"`
}

// MaxNodeTokens bounds the node tokens of one cluster (and so a desired
// set's NodeTokens and a sync's NodeTokenUses).
const MaxNodeTokens = 256
