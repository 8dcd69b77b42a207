package browsertest

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

const (
	desktopW, desktopH = 1280, 860
	phoneW, phoneH     = 390, 844
)

// nginxSLA is the example SLA from sla_examples/, as a user pastes it.
func nginxSLA(t *testing.T) string {
	return readFile(t, filepath.Join("..", "..", "sla_examples", "nginx.json"))
}

type app struct {
	ID            string   `json:"applicationID"`
	Name          string   `json:"application_name"`
	Microservices []string `json:"microservices"`
}

func (s *stack) apps() []app {
	s.t.Helper()
	var out []app
	if code := s.api("GET", "/api/applications/", nil, &out); code != http.StatusOK {
		s.t.Fatalf("list applications: %d", code)
	}
	return out
}

// deployNginx stores the nginx example through the API (for tests that are
// about something else than the form).
func (s *stack) deployNginx() app {
	s.t.Helper()
	var sla any
	if err := jsonUnmarshal(nginxSLA(s.t), &sla); err != nil {
		s.t.Fatal(err)
	}
	var out []app
	if code := s.api("POST", "/api/application/", sla, &out); code != http.StatusOK || len(out) != 1 {
		s.t.Fatalf("deploy nginx: %d %v", code, out)
	}
	return out[0]
}

func TestWrongPasswordShowsError(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s, desktopW, desktopH)
	b.Open("")
	b.WaitJS("login page", `location.hash === "#/login"`)
	b.TypeInto("#login-username", "Admin")
	b.TypeInto("#login-password", "not-the-password")
	b.Click(".login-form button[type=submit]")
	b.WaitText("#login-error", "Wrong user name or password")
	var st struct {
		Hash    string
		Invalid string
		Focused string
		Stored  bool
	}
	b.EvalInto(`({hash: location.hash, invalid: document.querySelector("#login-password").getAttribute("aria-invalid"),
		focused: document.activeElement.id, stored: sessionStorage.getItem("thicket.session") !== null})`, &st)
	if st.Hash != "#/login" || st.Invalid != "true" || st.Focused != "login-password" || st.Stored {
		t.Errorf("after a wrong password: %+v", st)
	}
	b.Screenshot("")
}

// TestKeyboardLoginReloadLogout logs in with the keyboard only, survives a
// reload (the session is in sessionStorage) and logs out.
func TestKeyboardLoginReloadLogout(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s, desktopW, desktopH)
	b.Open("#/login")
	b.WaitJS("focus on the user name", `document.activeElement && document.activeElement.id === "login-username"`)
	b.Do("type credentials",
		chromedp.KeyEvent("Admin"), chromedp.KeyEvent(kb.Tab),
		chromedp.KeyEvent(adminPassword), chromedp.KeyEvent(kb.Enter))
	b.WaitJS("applications page", `location.hash === "#/apps" && !!document.querySelector("#new-app")`)
	b.WaitText("#who", "Admin")
	b.WaitText(".nav", "Users")

	// Tab from the top reaches the skip link, then the navigation.
	b.Reload()
	b.WaitJS("still logged in after reload", `location.hash === "#/apps" && !document.querySelector("#topbar").hidden`)
	b.Key(kb.Tab)
	b.WaitJS("skip link focused", `document.activeElement.classList.contains("skip-link")`)
	var outline string
	b.EvalInto(`getComputedStyle(document.activeElement).outlineStyle`, &outline)
	if outline == "none" {
		t.Error("the focused skip link has no outline")
	}

	var tokens struct {
		Token   string `json:"token"`
		Refresh string `json:"refresh_token"`
	}
	var raw string
	b.EvalInto(`sessionStorage.getItem("thicket.session")`, &raw)
	if err := jsonUnmarshal(raw, &tokens); err != nil || tokens.Token == "" || tokens.Refresh == "" {
		t.Fatalf("session in sessionStorage: %v %q", err, raw)
	}

	b.Click("#logout")
	b.WaitJS("login page", `location.hash === "#/login" && !!document.querySelector("#login-username")`)
	b.WaitText(".notice", "You have logged out")
	var stored bool
	b.EvalInto(`sessionStorage.getItem("thicket.session") !== null`, &stored)
	if stored {
		t.Error("tokens still in sessionStorage after logout")
	}
	// The logout ended the session at the root too: its tokens are refused.
	refused := func() bool {
		return s.apiWith(tokens.Token, "GET", "/api/applications", nil, nil) == http.StatusUnauthorized &&
			s.apiWith(tokens.Refresh, "POST", "/api/auth/refresh", nil, nil) == http.StatusUnauthorized
	}
	deadline := time.Now().Add(5 * time.Second)
	for !refused() {
		if time.Now().After(deadline) {
			t.Fatal("the dashboard's tokens still work at the root after logout")
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Screenshot("")
}

// TestCreateApplicationFromPastedSLA pastes sla_examples/nginx.json into
// the form, deploys it without instances, and finds it in the list and its
// service with the instance table on the services page.
func TestCreateApplicationFromPastedSLA(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.WaitJS("deploy form open on an empty list", `!document.querySelector("#deploy-panel").hidden`)
	b.Paste("#sla-input", nginxSLA(t))
	b.Click("#sla-start") // untick: create the services only
	b.Click("#sla-deploy")
	b.WaitText("main .table", "nginx")
	b.WaitText(".toasts", "Deployed nginx")
	b.WaitJS("form closed", `document.querySelector("#deploy-panel").hidden`)
	if apps := s.apps(); len(apps) != 1 || apps[0].Name != "nginx" {
		t.Fatalf("applications after deploy: %+v", apps)
	}
	b.Screenshot("list")

	b.Click(`a[data-key^="open-"]`)
	b.WaitText(".service .section-title", "nginx")
	b.WaitText(".service", "No instances")
	b.WaitText(".service .facts", "10.30.0.80")
	b.WaitText(".service .facts", "docker.io/library/nginx:latest")
	b.WaitText(".service .service-status", "CREATED")
	b.WaitText(".crumbs", "Applications")
	b.Screenshot("")
}

// TestUploadSLA deploys the example from a file chosen with the form's
// upload button, as a user does with a file on disk.
func TestUploadSLA(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	sla, err := filepath.Abs(filepath.Join("..", "..", "sla_examples", "nginx.json"))
	if err != nil {
		t.Fatal(err)
	}
	b.ChooseFile("#sla-file", sla)
	b.WaitJS("file loaded into the editor", `document.querySelector("#sla-input").value.includes('"application_name": "nginx"')`)
	b.Click("#sla-start") // untick: create the services only
	b.Click("#sla-deploy")
	b.WaitText(".toasts", "Deployed nginx")
	b.WaitText("main .table", "nginx")
	if apps := s.apps(); len(apps) != 1 || apps[0].Name != "nginx" || len(apps[0].Microservices) != 1 {
		t.Fatalf("applications after uploading the SLA: %+v", apps)
	}
	b.Screenshot("")
}

// TestAddAndRemoveInstance adds an instance (no cluster has joined, so it
// shows NO_CAPACITY), opens its log panel and removes it again.
func TestAddAndRemoveInstance(t *testing.T) {
	s := startStack(t)
	a := s.deployNginx()
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/apps/" + a.ID)
	b.WaitText(".service", "No instances")

	b.Click(`[data-action="add-instance"]`)
	b.WaitText(`.service tr[data-row="0"]`, "NO_CAPACITY")
	b.WaitText(`.service tr[data-row="0"]`, "no cluster has joined")
	b.WaitText(".service .sub-title", "Instances (1)")
	b.Screenshot("added")

	b.Click(`[data-action="logs"]`)
	b.Visible("dialog.drawer[open]")
	b.WaitText("dialog.drawer", "No output yet")
	b.Key(kb.Escape)
	b.WaitJS("log panel closed", `!document.querySelector("dialog.drawer")`)

	b.Click(`[data-action="remove-instance"]`)
	b.Visible("dialog.modal[open]")
	b.Click("dialog.modal [data-confirm]")
	b.WaitText(".service", "No instances")
	b.WaitJS("row gone", `!document.querySelector('.service tr[data-row="0"]')`)
	var svc []struct {
		Instances []any `json:"instance_list"`
	}
	s.api("GET", "/api/services/"+a.ID, nil, &svc)
	if len(svc) != 1 || len(svc[0].Instances) != 0 {
		t.Errorf("after removing the instance: %+v", svc)
	}
	b.Screenshot("")
}

// TestInvalidSLAShowsFieldPath deploys an SLA with a bad port: the form
// names the field, marks its line, and nothing is created.
func TestInvalidSLAShowsFieldPath(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	bad := strings.Replace(nginxSLA(t), `"80:80/tcp"`, `"80:"`, 1)
	if !strings.Contains(bad, `"80:"`) {
		t.Fatal("sla_examples/nginx.json has no port 80:80/tcp to break")
	}
	portLine := strings.Count(bad[:strings.Index(bad, `"port"`)], "\n") + 1

	b.Paste("#sla-input", bad)
	b.Click("#sla-deploy")
	b.WaitText("#sla-input-error .field-path", "applications[0].microservices[0].port")
	b.WaitText("#sla-input-error", "container port is empty")
	b.WaitText("#sla-input-error", "Nothing was created")
	b.WaitText("#sla-input-error", fmt.Sprintf("line %d", portLine))
	var st struct {
		Invalid   string
		ErrLines  []string
		BandShown bool
	}
	b.EvalInto(`({invalid: document.querySelector("#sla-input").getAttribute("aria-invalid"),
		errLines: [...document.querySelectorAll(".editor-gutter .is-error")].map((e) => e.textContent),
		bandShown: !document.querySelector(".editor-band").hidden})`, &st)
	if st.Invalid != "true" || len(st.ErrLines) != 1 || st.ErrLines[0] != fmt.Sprint(portLine) || !st.BandShown {
		t.Errorf("field marking: %+v, want line %d", st, portLine)
	}
	if apps := s.apps(); len(apps) != 0 {
		t.Errorf("an invalid SLA created %d applications", len(apps))
	}
	b.WaitText("main", "No applications yet")
	b.Screenshot("")
}

func TestDeleteApplication(t *testing.T) {
	s := startStack(t)
	s.deployNginx()
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.WaitText("main .table", "nginx")
	b.Click(`[data-action="delete-app"]`)
	b.Visible("dialog.modal[open]")
	b.WaitText("dialog.modal", "Delete nginx?")
	b.Click("dialog.modal [data-confirm]")
	b.WaitText("main", "No applications yet")
	if apps := s.apps(); len(apps) != 0 {
		t.Errorf("%d applications left after delete", len(apps))
	}
	b.Screenshot("")
}

// TestAdminUsersAndJoinTokens lists users, creates one (showing a field
// error first), and creates a join token that is shown once.
func TestAdminUsersAndJoinTokens(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Click(`.nav a[data-nav="users"]`)
	b.WaitText("main .table", "Admin")

	b.TypeInto("#user-name", "alice")
	b.TypeInto("#user-password", "short")
	b.Click("main form button[type=submit]")
	b.WaitJS("password error", `!document.querySelector("#user-password-error").hidden`)
	b.EvalInto(`(() => { document.querySelector("#user-password").value = ""; return true; })()`, new(bool))
	b.TypeInto("#user-password", "alice-password")
	b.Click("main form button[type=submit]")
	b.WaitText("main .table", "alice")
	var users []struct{ Username string }
	s.api("GET", "/api/users/", nil, &users)
	if len(users) != 2 {
		t.Errorf("users: %+v", users)
	}
	b.Screenshot("users")

	b.Click(`.nav a[data-nav="tokens"]`)
	b.WaitText("main .table", "default")
	b.TypeInto("#token-name", "site-munich")
	b.Click("main form button[type=submit]")
	b.Visible("#new-token")
	var token string
	b.EvalInto(`document.querySelector("#new-token").value`, &token)
	pin, err := s.root.Pin()
	if err != nil {
		t.Fatal(err)
	}
	hexPin := strings.TrimPrefix(pin, "sha256:")
	if !strings.HasPrefix(token, "thk1"+hexPin+"::") {
		t.Errorf("shown token %q does not carry the root's pin %s", token, pin)
	}
	// The command checks the root's CA against that pin, then trusts it only.
	var cmd string
	b.EvalInto(`document.querySelector(".token-reveal pre.cmd").textContent`, &cmd)
	for _, want := range []string{"{ curl -sfk " + s.rootURL + "/ca.crt -o root-ca.crt", "= " + hexPin + " ||", "refused " + s.rootURL,
		"curl -sfL --cacert root-ca.crt " + s.rootURL + "/install/cluster.sh | sh -s -- --ca-file root-ca.crt --token-file cluster-join-token"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("the attach command lacks %q:\n%s", want, cmd)
		}
	}
	b.WaitText("main .table", "site-munich")
	b.WaitText(".token-reveal", "shown only this once")
	var tokens []struct {
		ID, Name, State string
		ExpiresAt       *time.Time `json:"expires_at"`
	}
	s.api("GET", "/api/clusters/tokens", nil, &tokens)
	if len(tokens) != 2 || tokens[1].Name != "site-munich" || tokens[1].State != "active" || tokens[1].ExpiresAt == nil ||
		time.Until(*tokens[1].ExpiresAt) < 23*time.Hour {
		t.Fatalf("tokens: %+v", tokens)
	}
	b.WaitText(`main .table [data-state="active"]`, "active")
	b.Screenshot("")
	// Revoked elsewhere: the page no longer offers its command.
	s.api("DELETE", "/api/clusters/tokens/"+tokens[1].ID, nil, nil)
	b.WaitText(".token-reveal-slot", "its command was removed")
	var cmds int
	b.EvalInto(`document.querySelectorAll(".token-reveal pre.cmd").length`, &cmds)
	if cmds != 0 {
		t.Errorf("the command of a revoked token is still shown")
	}
}

// TestPhoneWidth uses the pages at a phone's width: nothing overflows
// sideways, tables turn into cards.
func TestPhoneWidth(t *testing.T) {
	s := startStack(t)
	a := s.deployNginx()
	var inst struct {
		N int `json:"instance_number"`
	}
	s.api("POST", "/api/service/"+a.Microservices[0]+"/instance", nil, &inst)
	b := newBrowser(t, s, phoneW, phoneH)
	b.Login("Admin", adminPassword)
	b.WaitText("main", "nginx")
	b.NoHorizontalOverflow("applications")
	var thead string
	b.EvalInto(`getComputedStyle(document.querySelector("main .table thead")).display`, &thead)
	if thead != "none" {
		t.Errorf("table header at phone width: display %q, want none (cards)", thead)
	}
	b.Screenshot("apps")

	b.Open("#/apps/" + a.ID)
	b.WaitText(`.service tr[data-row="0"]`, "NO_CAPACITY")
	b.NoHorizontalOverflow("services")
	b.Screenshot("")
}

// TestSessionExpiry: tokens that the root no longer accepts send the user
// back to the login form, which says why.
func TestSessionExpiry(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.EvalInto(`(() => { const s = JSON.parse(sessionStorage.getItem("thicket.session"));
		s.token = "bad"; s.refresh_token = "bad"; sessionStorage.setItem("thicket.session", JSON.stringify(s)); return true; })()`, new(bool))
	b.Reload()
	b.WaitJS("login page", `location.hash === "#/login" && !!document.querySelector("#login-username")`)
	b.WaitText(".notice", "Your session has ended")
	b.Screenshot("")
}

// TestTokenRefresh runs the root with 62 s access tokens: the dashboard
// refreshes them ahead of expiry (a minute before, but not before half-way,
// so here after 31 s) and keeps working with the new ones.
func TestTokenRefresh(t *testing.T) {
	s := startStack(t, "--access-ttl", "62s")
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	var before string
	b.EvalInto(`JSON.parse(sessionStorage.getItem("thicket.session")).token`, &before)
	b.WaitJS("token refreshed", fmt.Sprintf(`JSON.parse(sessionStorage.getItem("thicket.session") || "{}").token !== %q`, before))
	s.deployNginx()
	b.WaitText("main .table", "nginx") // polling goes on with the new token
	b.Screenshot("")
}
