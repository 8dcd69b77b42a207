package nodeapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thicket-edge/thicket/cluster_orchestrator/internal/nodetokens"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/secretfile"
)

// Admitter decides which join tokens admit a node (see package
// nodetokens).
type Admitter interface {
	// Known reports whether secret is a token the cluster knows at all
	// (its own, or one the root lists), whatever its state.
	Known(secret string) bool
	// Admit decides whether secret admits a node named name; holder: the
	// node showed its own credential. It spends a single-use token; undo
	// gives it back. Errors: nodetokens.ErrUnknown, a *nodetokens.Refusal,
	// or a failure of the store.
	Admit(ctx context.Context, secret, name string, holder bool) (undo func(context.Context), err error)
}

// holder is what a Registrar may also tell: whether a request carries
// the credential of the registered node of its name.
type holder interface {
	Holds(req wire.NodeRegisterRequest) bool
}

var mRefused = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: "thicket_cluster", Name: "node_join_tokens_refused_total",
	Help: "Node registrations refused for their join token: unknown (never issued or revoked), or expired, spent or scoped to another name (refused).",
}, []string{"reason"})

// admit runs the token's checks once the request is decoded; on a refusal
// it answers 401 with the reason and returns false.
func admit(w http.ResponseWriter, r *http.Request, tokens Admitter, tok string, req wire.NodeRegisterRequest, reg Registrar, log *slog.Logger) (func(context.Context), bool) {
	h, _ := reg.(holder)
	undo, err := tokens.Admit(r.Context(), tok, req.Name, h != nil && h.Holds(req))
	if err == nil {
		return undo, true
	}
	var refusal *nodetokens.Refusal
	if errors.As(err, &refusal) {
		mRefused.WithLabelValues("refused").Inc()
		log.Warn("node registration refused", "node", req.Name, "reason", refusal.Reason, "from", r.RemoteAddr)
		writeErr(w, http.StatusUnauthorized, refusal.Reason, "")
		return nil, false
	}
	if errors.Is(err, nodetokens.ErrUnknown) {
		mRefused.WithLabelValues("unknown").Inc()
		writeErr(w, http.StatusUnauthorized, "invalid node join token", "")
		return nil, false
	}
	log.Error("check node join token", "node", req.Name, "err", err)
	writeErr(w, http.StatusInternalServerError, "internal error", "")
	return nil, false
}

// onlyToken admits by one token's secret.
type onlyToken string

func (o onlyToken) Known(secret string) bool {
	return o != "" && secretfile.Equal(secret, string(o))
}

func (o onlyToken) Admit(_ context.Context, secret, _ string, _ bool) (func(context.Context), error) {
	if !o.Known(secret) {
		return nil, nodetokens.ErrUnknown
	}
	return func(context.Context) {}, nil
}
