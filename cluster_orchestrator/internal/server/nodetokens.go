package server

import (
	"context"

	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/nodetokens"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/state"
	"github.com/thicket-edge/thicket/internal/pki"
)

// nodeTokens is the keeper of the tokens that admit nodes: the cluster's
// own (tok, from nodeJoinToken) and the root's node tokens.
func nodeTokens(ctx context.Context, tok string, st *state.Store) (*nodetokens.Keeper, error) {
	_, secret, err := pki.ParseJoinToken(tok)
	if err != nil || secret == "" {
		secret = tok
	}
	return nodetokens.New(ctx, secret, st, nil)
}
