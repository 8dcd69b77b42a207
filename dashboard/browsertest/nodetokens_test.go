package browsertest

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
)

// TestNodeTokens: from a cluster's card an admin opens its node join
// tokens, creates a single-use one for a node name, sees it once with the
// cluster's pin and the worker.sh command (which checks the root's CA
// against its pin first), and revokes it after a confirmation; the root
// then lists none.
func TestNodeTokens(t *testing.T) {
	s := startStack(t)
	join := strings.TrimSpace(readFile(t, filepath.Join(s.dataDir, "cluster-join-token")))
	var reg wire.ClusterRegisterResponse
	if code := s.apiWith(join, "POST", "/api/cluster/register", wire.ClusterRegisterRequest{Version: wire.Version, Name: "edge",
		Address: "192.0.2.7", Port: 10100}, &reg); code != http.StatusOK {
		t.Fatalf("register a cluster: %d", code)
	}
	clusterPin := strings.Repeat("c1", 32)
	if code := s.apiWith(reg.Credential, "POST", "/api/cluster/sync", wire.ClusterSync{Version: wire.Version, Delta: true, CAPin: "sha256:" + clusterPin}, nil); code != http.StatusOK {
		t.Fatalf("sync: %d", code)
	}
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Click(`.nav a[data-nav="infra"]`)
	b.Click(`[data-action="node-tokens"]`)
	b.WaitText("main h1", "Node join tokens of edge")
	b.WaitText("main", "No node join tokens.")
	b.TypeInto("#node-token-node", "w1")
	b.Click("#node-token-single-use")
	b.Click("main form button[type=submit]")
	b.Visible("#new-node-token")
	var token, cmd string
	b.EvalInto(`document.querySelector("#new-node-token").value`, &token)
	if !strings.HasPrefix(token, "thk1"+clusterPin+"::thn_") {
		t.Errorf("shown token %q does not carry the cluster's pin", token)
	}
	rootPin, err := s.root.Pin()
	if err != nil {
		t.Fatal(err)
	}
	b.WaitJS("the worker command", `!!document.querySelector('[data-role="worker-command"]')`)
	b.EvalInto(`document.querySelector('[data-role="worker-command"]').textContent`, &cmd)
	for _, want := range []string{"umask 077; cat > node-join-token", "{ curl -sfk " + s.rootURL + "/ca.crt -o root-ca.crt",
		"= " + strings.TrimPrefix(rootPin, "sha256:") + " ||",
		"curl -sfL --cacert root-ca.crt " + s.rootURL + "/install/worker.sh | sh -s -- --ca-file root-ca.crt --cluster-url https://192.0.2.7:10100 --token-file node-join-token --name w1"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("the worker command lacks %q:\n%s", want, cmd)
		}
	}
	b.WaitText("main .table", "single · only w1")
	b.Screenshot("")
	var toks []api.NodeToken
	s.api("GET", "/api/clusters/edge/node-tokens", nil, &toks)
	if len(toks) != 1 || !toks[0].SingleUse || toks[0].NodeName != "w1" || toks[0].State != "active" {
		t.Fatalf("the root lists %+v", toks)
	}
	b.Click(`[data-action="revoke-node-token"]`)
	b.Visible("dialog.modal[open]")
	b.Click("dialog.modal [data-confirm]")
	b.WaitText(".token-reveal-slot", "its command was removed")
	b.WaitText("main", "No node join tokens.")
	s.api("GET", "/api/clusters/edge/node-tokens", nil, &toks)
	if len(toks) != 0 {
		t.Errorf("after the revoke the root lists %+v", toks)
	}
}
