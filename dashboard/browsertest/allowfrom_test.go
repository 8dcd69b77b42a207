package browsertest

import (
	"net/http"
	"slices"
	"testing"
)

// TestServiceAllowFrom: the services page shows a service's allow_from as
// an editable list; saving a new one stores it (the page follows), a
// malformed entry is refused with the root's message and changes nothing,
// and an empty field lets only the owner's instances in. An application
// isolated on its own says so in its header.
func TestServiceAllowFrom(t *testing.T) {
	s := startStack(t)
	var sla map[string]any
	if err := jsonUnmarshal(nginxSLA(t), &sla); err != nil {
		t.Fatal(err)
	}
	ms := sla["applications"].([]any)[0].(map[string]any)["microservices"].([]any)
	ms[0].(map[string]any)["allow_from"] = []string{"carol"}
	sla["applications"].([]any)[0].(map[string]any)["isolation"] = "application"
	var out []app
	if code := s.api("POST", "/api/application/", sla, &out); code != http.StatusOK || len(out) != 1 {
		t.Fatalf("deploy: %d %v", code, out)
	}
	a := out[0]
	svc := a.Microservices[0]
	stored := func() []string {
		var got struct {
			AllowFrom []string `json:"allow_from"`
		}
		s.api("GET", "/api/service/"+svc, nil, &got)
		return got.AllowFrom
	}
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/apps/" + a.ID)
	input := `form[data-allow-from="` + svc + `"] input`
	save := `form[data-allow-from="` + svc + `"] button`
	b.WaitJS("the field shows the list", `document.querySelector('`+input+`')?.value === "carol"`)
	b.WaitText(`.page-head [data-isolation="application"]`, "isolated")

	b.EvalInto(`(() => { document.querySelector('`+input+`').value = ""; return true; })()`, new(bool))
	b.TypeInto(input, "bob, dave/shop")
	b.Click(save)
	b.WaitText(".toasts", "bob, dave/shop may connect.")
	if got := stored(); !slices.Equal(got, []string{"bob", "dave/shop"}) {
		t.Errorf("stored %q, want [bob dave/shop]", got)
	}
	b.Screenshot("saved")

	b.EvalInto(`(() => { document.querySelector('`+input+`').value = ""; return true; })()`, new(bool))
	b.TypeInto(input, "bob/shop/web/x")
	b.Click(save)
	b.WaitText(".toasts", `"bob/shop/web/x"`)
	if got := stored(); !slices.Equal(got, []string{"bob", "dave/shop"}) {
		t.Errorf("a refused list changed the store: %q", got)
	}

	b.EvalInto(`(() => { document.querySelector('`+input+`').value = ""; return true; })()`, new(bool))
	b.Click(save)
	b.WaitText(".toasts", "only its owner's instances may connect.")
	if got := stored(); len(got) != 0 {
		t.Errorf("emptied, stored %q", got)
	}
	b.WaitJS("the field is empty", `document.querySelector('`+input+`')?.value === ""`)
	b.Screenshot("")
}
