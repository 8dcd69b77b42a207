package commands

import (
	"fmt"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/api"
)

// NodeTokenCmd is `thicket node-token`: node join tokens of a cluster,
// issued by the root (admins only).
type NodeTokenCmd struct {
	List   NodeTokenListCmd   `cmd:"" aliases:"ls" help:"List a cluster's node join tokens with their state (active, expired, spent)."`
	Create NodeTokenCreateCmd `cmd:"" help:"Create a node join token for a cluster and print it (it is shown only this once)."`
	Revoke NodeTokenRevokeCmd `cmd:"" aliases:"delete,rm" help:"Revoke a node join token: the cluster admits no node by it within seconds."`
}

// NodeTokenListCmd is `thicket node-token list`.
type NodeTokenListCmd struct {
	Cluster string `required:"" placeholder:"NAME" help:"The cluster (name or id)."`
}

// Run lists the tokens.
func (c *NodeTokenListCmd) Run(e *Env) error {
	return list(e, func(cl *api.Client) ([]api.NodeToken, error) { return cl.NodeTokens(e.Ctx, c.Cluster) },
		[]string{"ID", "STATE", "EXPIRES", "SINGLE_USE", "NODE", "USED_BY", "CREATED"},
		func(t api.NodeToken) []string {
			return []string{t.ID, t.State, expiresAt(t.ExpiresAt), yesNo(t.SingleUse), t.NodeName, t.UsedBy, t.CreatedAt.Local().Format(time.DateTime)}
		})
}

// NodeTokenCreateCmd is `thicket node-token create`.
type NodeTokenCreateCmd struct {
	Cluster   string `required:"" placeholder:"NAME" help:"The cluster (name or id) the token admits nodes to."`
	ExpiresIn string `name:"expires-in" default:"24h" placeholder:"DURATION" help:"How long the token admits nodes (e.g. 1h, 72h), or never."`
	SingleUse bool   `name:"single-use" help:"The token admits one node, then is spent."`
	Node      string `placeholder:"NAME" help:"Only a node of this name registers with the token."`
}

// Run creates the token: the token alone on stdout (for scripts), what it
// is and how a worker uses it on stderr; -o json prints everything on
// stdout.
func (c *NodeTokenCreateCmd) Run(e *Env) error {
	cl, err := e.session()
	if err != nil {
		return err
	}
	t, err := cl.CreateNodeToken(e.Ctx, c.Cluster, api.NodeTokenRequest{ExpiresIn: c.ExpiresIn, SingleUse: c.SingleUse, NodeName: c.Node})
	if err != nil {
		return fmt.Errorf("create node join token: %w", err)
	}
	if e.json() {
		return writeJSON(e.Out, t)
	}
	what := []string{"for cluster " + t.Cluster, expirySentence(t.ExpiresAt)}
	if t.SingleUse {
		what = append(what, "single-use")
	}
	if t.NodeName != "" {
		what = append(what, "only for node "+t.NodeName)
	}
	fmt.Fprintf(e.Err, "node join token %s (%s); shown only this once:\n", t.ID, strings.Join(what, ", "))
	fmt.Fprintln(e.Out, t.Token)
	if !t.Pinned {
		fmt.Fprintln(e.Err, "warning: the cluster has not told the root its CA pin yet (or serves plain text): the token carries no pin, so nodes cannot verify the cluster with it")
	}
	url := t.ClusterURL
	if url == "" {
		url = "https://CLUSTER:10100"
	}
	name := ""
	if t.NodeName != "" {
		name = " --name " + t.NodeName
	}
	fmt.Fprintf(e.Err, "on the worker: save it in a file (umask 077; cat > node-join-token), then run worker.sh from the root with --cluster-url %s --token-file node-join-token%s\n", url, name)
	return nil
}

// NodeTokenRevokeCmd is `thicket node-token revoke`.
type NodeTokenRevokeCmd struct {
	Cluster string `required:"" placeholder:"NAME" help:"The cluster (name or id)."`
	Token   string `arg:"" help:"Token id."`
}

// Run revokes the token.
func (c *NodeTokenRevokeCmd) Run(e *Env) error {
	cl, err := e.session()
	if err != nil {
		return err
	}
	if err := cl.DeleteNodeToken(e.Ctx, c.Cluster, c.Token); err != nil {
		return fmt.Errorf("revoke node join token %s: %w", c.Token, err)
	}
	fmt.Fprintf(e.Out, "node join token %s of cluster %s revoked\n", c.Token, c.Cluster)
	return nil
}

// expiresAt is when a token expires, for a table, or "never".
func expiresAt(at *time.Time) string {
	if at == nil {
		return "never"
	}
	return at.Local().Format(time.DateTime)
}

// expirySentence says when a token expires, or that it never does.
func expirySentence(at *time.Time) string {
	if at == nil {
		return "never expires"
	}
	return "expires " + expiresAt(at)
}
