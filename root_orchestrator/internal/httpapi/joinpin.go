package httpapi

import "github.com/thicket-edge/thicket/internal/pki"

// SetJoinTokenPin makes the join tokens the API creates carry the pin of
// the root's CA ("thk1<hash>::<secret>"), which the joining cluster checks
// the root's certificate against. Without it (plain HTTP) tokens are the
// bare secret.
func (s *Server) SetJoinTokenPin(pin string) { s.joinPin = pin }

// pinned returns a new token's secret in the form the joining side gets.
func (s *Server) pinned(secret string) (string, error) {
	if s.joinPin == "" {
		return secret, nil
	}
	return pki.JoinToken(s.joinPin, secret)
}

// joinSecret is the secret of a join token a cluster shows: the part after
// the pin, or the whole token when it carries none. The pin is the
// cluster's to check; a token with any pin and a known secret is the token.
func joinSecret(tok string) string {
	if _, secret, err := pki.ParseJoinToken(tok); err == nil {
		return secret
	}
	return tok
}
