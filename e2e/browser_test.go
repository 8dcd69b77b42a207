package e2e

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/thicket-edge/thicket/dashboard/browsertest"
)

// adminDashboard opens the root's dashboard in a browser that trusts the
// root's serving certificate, logged in as Admin.
func (s *system) adminDashboard(t *testing.T) *browsertest.Browser {
	t.Helper()
	spki, err := s.started.LeafSPKI(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b := browsertest.NewTrusting(t, s.rootURL, spki, 1280, 860)
	b.Login("Admin", readFile(t, filepath.Join(s.rootDir, "admin-password")))
	return b
}
