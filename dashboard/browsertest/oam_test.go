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

// TestDeployComponentDefinitions pastes the overloaded example (two
// ComponentDefinitions, then an Application of their base) into the
// application form: the definitions are registered first and listed, the
// application deploys, its service's instance table has the
// Implementation column, and a definition is deleted from its list.
func TestDeployComponentDefinitions(t *testing.T) {
	manifest, err := os.ReadFile(filepath.Join("..", "..", "sla_examples", "oam", "video-analytics.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := startStack(t)
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.WaitJS("deploy form open on an empty list", `!document.querySelector("#deploy-panel").hidden`)

	// A bad definition names its field; nothing is registered.
	b.Paste("#sla-input", strings.Replace(string(manifest), "virtualization: wasm", "virtualization: vm", 1))
	b.Click("#sla-deploy")
	b.WaitText("#sla-input-error .field-path", "spec.workload.virtualization")
	var types []struct{ Kind string }
	s.api("GET", "/api/oam/componentdefinitions", nil, &types)
	if len(types) != 4 || types[3].Kind != "definition" {
		// The container definition came first and was registered.
		t.Fatalf("after the refusal: %+v", types)
	}

	b.WaitJS("editor selected", `(() => { const e = document.querySelector("#sla-input"); e.focus(); e.select(); return true; })()`)
	b.Paste("#sla-input", string(manifest))
	b.Click("#sla-deploy")
	b.WaitText(".toasts", "Registered component definitions va-container, va-wasm")
	b.WaitText(".toasts", "Deployed OAM application cameras · 2 instances requested")
	b.WaitText("#component-definitions", "va-wasm")
	b.WaitText("#component-definitions", "video-analytics")
	b.Screenshot("definitions")

	apps := s.apps()
	if len(apps) != 1 {
		t.Fatalf("applications: %+v", apps)
	}
	b.Open("#/apps/" + apps[0].ID)
	b.WaitText("main .table", "Implementation")
	b.Screenshot("service")

	b.Open("#/apps")
	b.Click(`[data-key="del-def-va-container"]`)
	b.Visible("dialog.modal[open]")
	b.WaitText("dialog.modal", "Delete va-container?")
	b.Click("dialog.modal [data-confirm]")
	b.WaitGone("#component-definitions", "va-container")
	b.WaitText("#component-definitions", "va-wasm")
}
