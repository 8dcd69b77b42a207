package commands

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/cli/internal/config"
)

// trust is the CA the server's certificate must be issued by: PEM or a pin
// (neither: the system's roots).
type trust struct {
	CA    string
	CAPin string
}

// trust is --ca-file or --ca-pin, else what the last login to server saved.
func (e *Env) trust(server string, saved *config.Credentials) (trust, error) {
	switch {
	case e.G.CAFile != "" && e.G.CAPin != "":
		return trust{}, usagef("--ca-file and --ca-pin exclude each other")
	case e.G.CAFile != "":
		b, err := os.ReadFile(e.G.CAFile)
		if err != nil {
			return trust{}, fmt.Errorf("--ca-file: %w", err)
		}
		if _, err := api.TLSConfig(b, "", ""); err != nil {
			return trust{}, fmt.Errorf("--ca-file %s: %w", e.G.CAFile, err)
		}
		return trust{CA: string(b)}, nil
	case e.G.CAPin != "":
		pin, err := api.ParsePin(e.G.CAPin)
		if err != nil {
			return trust{}, usagef("--ca-pin: %v", err)
		}
		return trust{CAPin: pin}, nil
	case saved != nil && saved.Server == server:
		return trust{CA: saved.CA, CAPin: saved.CAPin}, nil
	}
	return trust{}, nil
}

// caHint is said after an error with a certificate of a CA the CLI was not
// told to trust.
const caHint = "thicket: the server's CA is not trusted here: give thicket-root's CA with --ca-file (its <data-dir>/tls/ca.crt) or --ca-pin (the pin it logs), e.g. thicket login --ca-file ca.crt"

// unknownCA reports whether err is a certificate of an unknown authority
// (with no CA given, so the system's roots were asked).
func unknownCA(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}
