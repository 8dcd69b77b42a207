package browsertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeployOAMManifest pastes an OAM manifest into the application form:
// a bad one names the field and its line and creates nothing; the example
// deploys with the instances its traits ask for.
func TestDeployOAMManifest(t *testing.T) {
	manifest, err := os.ReadFile(filepath.Join("..", "..", "sla_examples", "oam", "shop.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := startStack(t)
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.WaitJS("deploy form open on an empty list", `!document.querySelector("#deploy-panel").hidden`)

	bad := strings.Replace(string(manifest), "type: worker", "type: daemon", 1)
	b.Paste("#sla-input", bad)
	b.Click("#sla-deploy")
	b.WaitText("#sla-input-error .field-path", "spec.components[1].type")
	b.WaitText("#sla-input-error", `component type "daemon" is not supported`)
	typeLine := strings.Count(bad[:strings.Index(bad, "type: daemon")], "\n") + 1
	b.WaitText("#sla-input-error", fmt.Sprintf("line %d", typeLine))
	if apps := s.apps(); len(apps) != 0 {
		t.Fatalf("an invalid manifest created %d applications", len(apps))
	}
	b.Screenshot("invalid")

	// Select the bad text, so that the paste replaces it.
	b.WaitJS("editor selected", `(() => { const e = document.querySelector("#sla-input"); e.focus(); e.select(); return true; })()`)
	b.Paste("#sla-input", string(manifest))
	b.Click("#sla-deploy")
	b.WaitText(".toasts", "Deployed OAM application shop · 4 instances requested")
	b.WaitText("main .table", "shop")
	if apps := s.apps(); len(apps) != 1 || apps[0].Name != "shop" || len(apps[0].Microservices) != 3 {
		t.Fatalf("applications after deploy: %+v", apps)
	}
	b.Screenshot("")
}
