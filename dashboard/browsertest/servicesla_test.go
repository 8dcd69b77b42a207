package browsertest

import (
	"net/http"
	"strings"
	"testing"
)

// TestStoredSLAAndDeleteService: a service's page shows its stored command
// and environment with the values masked until Show values, and a service
// is deleted from there, the application keeping its others (issue 23,
// item 4).
func TestStoredSLAAndDeleteService(t *testing.T) {
	s := startStack(t)
	a := s.deployWithSecrets()
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/apps/" + a.ID)
	b.WaitText(".service .facts", `nginx -g "daemon off;"`)
	b.WaitText(".service .env", "DB_PASSWORD=")
	var text string
	b.EvalInto(`document.querySelector(".service .facts").textContent`, &text)
	if strings.Contains(text, "s3cret-value") || strings.Contains(text, "prod") {
		t.Errorf("environment values shown before Show values: %q", text)
	}
	b.Screenshot("masked")
	b.Click(`[data-action="reveal-env"]`)
	b.WaitText(".service .env", "DB_PASSWORD=s3cret-value")
	b.WaitText(".service .env", "MODE=prod")
	b.Click(`[data-action="reveal-env"]`)
	b.WaitGone(".service .env", "s3cret-value")

	b.Click(`[data-action="delete-service"]`)
	b.Visible("dialog.modal[open]")
	b.WaitText("dialog.modal", "Delete service nginx?")
	b.Click("dialog.modal [data-confirm]")
	b.WaitText("main", "This application has no services.")
	var svcs []any
	s.api("GET", "/api/services/"+a.ID, nil, &svcs)
	if len(svcs) != 0 {
		t.Errorf("after the delete the application has %d services", len(svcs))
	}
	b.Screenshot("deleted")
}

// TestAddService: a service is added to an existing application from its
// page; a bad one shows its problem with the field and creates nothing.
func TestAddService(t *testing.T) {
	s, a, b := servicesPage(t)
	count := func() int {
		var svcs []any
		s.api("GET", "/api/services/"+a.ID, nil, &svcs)
		return len(svcs)
	}
	b.Click(`[data-action="add-service"]`)
	b.Visible("#add-service-input")
	b.EvalInto(`(() => { const i = document.querySelector("#add-service-input");
		const v = JSON.parse(i.value); v.microservice_name = "cache"; v.port = "80:";
		i.value = JSON.stringify(v, null, 2); return true; })()`, new(bool))
	b.Click("#add-service-submit")
	b.WaitText("#add-service-error", "port")
	if n := count(); n != 1 {
		t.Fatalf("a bad service created something: %d services", n)
	}
	b.Screenshot("problem")
	b.EvalInto(`(() => { const i = document.querySelector("#add-service-input");
		const v = JSON.parse(i.value); v.port = ""; v.environment = ["A=1"];
		i.value = JSON.stringify(v, null, 2); i.dispatchEvent(new Event("input")); return true; })()`, new(bool))
	b.Click("#add-service-submit")
	b.WaitText("main", "cache")
	b.WaitJS("two service cards", `document.querySelectorAll(".service").length === 2`)
	if n := count(); n != 2 {
		t.Errorf("after the add the application has %d services", n)
	}
	b.Screenshot("added")
}

// deployWithSecrets stores the nginx example with a command and an
// environment holding a secret value (DB_PASSWORD=s3cret-value, MODE=prod).
func (s *stack) deployWithSecrets() app {
	s.t.Helper()
	sla := strings.Replace(nginxSLA(s.t), `"cmd": [],`, `"cmd": ["nginx", "-g", "daemon off;"], "environment": ["DB_PASSWORD=s3cret-value", "MODE=prod"],`, 1)
	var sv any
	if err := jsonUnmarshal(sla, &sv); err != nil {
		s.t.Fatal(err)
	}
	var out []app
	if code := s.api("POST", "/api/application/", sv, &out); code != http.StatusOK || len(out) != 1 {
		s.t.Fatalf("deploy: %d %v", code, out)
	}
	return out[0]
}
