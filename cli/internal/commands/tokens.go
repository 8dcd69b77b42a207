package commands

import (
	"fmt"
	"strings"
	"time"

	"github.com/thicket-edge/thicket/api"
)

// TokenCmd is `thicket token`: cluster join tokens (admins only).
type TokenCmd struct {
	List   TokenListCmd   `cmd:"" aliases:"ls" help:"List cluster join tokens with their state (active, expired, spent)."`
	Create TokenCreateCmd `cmd:"" help:"Create a cluster join token and print it (it is shown only this once)."`
	Revoke TokenRevokeCmd `cmd:"" aliases:"delete,rm" help:"Revoke a cluster join token: it stops working at once."`
}

// TokenListCmd is `thicket token list`.
type TokenListCmd struct{}

// Run lists the tokens.
func (c *TokenListCmd) Run(e *Env) error {
	return list(e, func(cl *api.Client) ([]api.JoinToken, error) { return cl.JoinTokens(e.Ctx) },
		[]string{"ID", "NAME", "STATE", "EXPIRES", "SINGLE_USE", "CLUSTER", "USED_BY", "CREATED"},
		func(t api.JoinToken) []string {
			return []string{t.ID, t.Name, t.State, expiresAt(t.ExpiresAt), yesNo(t.SingleUse), t.ClusterName, t.UsedBy,
				t.CreatedAt.Local().Format(time.DateTime)}
		})
}

// TokenCreateCmd is `thicket token create`.
type TokenCreateCmd struct {
	Name      string `help:"A label to tell tokens apart."`
	ExpiresIn string `name:"expires-in" default:"24h" placeholder:"DURATION" help:"How long the token works (e.g. 1h, 72h), or never."`
	SingleUse bool   `name:"single-use" help:"The token registers one cluster, then is spent."`
	Cluster   string `placeholder:"NAME" help:"Only a cluster of this name registers with the token; it may replace a registered cluster of that name (how a cluster that lost its data dir rejoins)."`
}

// Run creates the token: the token alone on stdout (for scripts), what it
// is on stderr; -o json prints everything on stdout.
func (c *TokenCreateCmd) Run(e *Env) error {
	cl, err := e.session()
	if err != nil {
		return err
	}
	t, err := cl.CreateJoinToken(e.Ctx, api.JoinTokenRequest{Name: c.Name, ExpiresIn: c.ExpiresIn, SingleUse: c.SingleUse, ClusterName: c.Cluster})
	if err != nil {
		return fmt.Errorf("create join token: %w", err)
	}
	if e.json() {
		return writeJSON(e.Out, t)
	}
	what := []string{expirySentence(t.ExpiresAt)}
	if t.SingleUse {
		what = append(what, "single-use")
	}
	if t.ClusterName != "" {
		what = append(what, "only for cluster "+t.ClusterName)
	}
	fmt.Fprintf(e.Err, "join token %s (%s); shown only this once:\n", t.ID, strings.Join(what, ", "))
	fmt.Fprintln(e.Out, t.Token)
	return nil
}

// TokenRevokeCmd is `thicket token revoke`.
type TokenRevokeCmd struct {
	Token string `arg:"" help:"Token id, or its unique name."`
}

// Run revokes the token.
func (c *TokenRevokeCmd) Run(e *Env) error {
	cl, err := e.session()
	if err != nil {
		return err
	}
	toks, err := cl.JoinTokens(e.Ctx)
	if err != nil {
		return err
	}
	var match []api.JoinToken
	for _, t := range toks {
		if t.ID == c.Token {
			match = []api.JoinToken{t}
			break
		}
		if t.Name == c.Token {
			match = append(match, t)
		}
	}
	switch len(match) {
	case 0:
		return fmt.Errorf("no join token %q (see thicket token list)", c.Token)
	case 1:
	default:
		return fmt.Errorf("%d join tokens are named %q: give the id (see thicket token list)", len(match), c.Token)
	}
	if err := cl.DeleteJoinToken(e.Ctx, match[0].ID); err != nil {
		return fmt.Errorf("revoke join token %s: %w", match[0].ID, err)
	}
	fmt.Fprintf(e.Out, "join token %s revoked\n", match[0].ID)
	return nil
}
