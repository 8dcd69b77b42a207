package browsertest

import (
	"net/http"
	"strings"
	"testing"
)

// TestEditService: a service's Edit button opens the SLA form filled with
// the stored service, its environment values masked; saving it unchanged
// restarts nothing; a bad edit shows its problem with the field and
// changes nothing; a new image with one variable changed keeps the masked
// one's stored value, and the page shows the rollout and the instance of
// the old spec (issue 23, item 4).
func TestEditService(t *testing.T) {
	s := startStack(t)
	a := s.deployWithSecrets()
	svcID := a.Microservices[0]
	if code := s.api("POST", "/api/service/"+svcID+"/instance", nil, nil); code != http.StatusOK {
		t.Fatalf("add an instance: %d", code)
	}
	type stored struct {
		Code        string   `json:"code"`
		Environment []string `json:"environment"`
		Rollout     *struct {
			Outdated int `json:"outdated"`
		} `json:"rollout"`
		Instances []struct {
			Number   int  `json:"instance_number"`
			Outdated bool `json:"outdated"`
		} `json:"instance_list"`
	}
	get := func() stored {
		var st stored
		if code := s.api("GET", "/api/service/"+svcID, nil, &st); code != http.StatusOK {
			t.Fatalf("get the service: %d", code)
		}
		return st
	}
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/apps/" + a.ID)
	b.WaitText(".service .facts", "DB_PASSWORD=")

	edit := func(js string) {
		b.Click(`[data-action="edit-service"]`)
		b.Visible("#edit-service-input")
		b.EvalInto(`(() => { const i = document.querySelector("#edit-service-input");
			const v = JSON.parse(i.value); `+js+`
			i.value = JSON.stringify(v, null, 2); i.dispatchEvent(new Event("input")); return true; })()`, new(bool))
	}
	var form string
	b.Click(`[data-action="edit-service"]`)
	b.Visible("#edit-service-input")
	b.EvalInto(`document.querySelector("#edit-service-input").value`, &form)
	if strings.Contains(form, "s3cret-value") || !strings.Contains(form, `"DB_PASSWORD=••••••"`) ||
		!strings.Contains(form, `"docker.io/library/nginx:latest"`) || !strings.Contains(form, `"daemon off;"`) {
		t.Fatalf("the edit form: %s", form)
	}
	b.Screenshot("form")
	b.Click("#edit-service-submit")
	b.WaitGone("body", "Edit service nginx")
	if st := get(); st.Rollout != nil || len(st.Instances) != 1 || st.Instances[0].Outdated ||
		strings.Join(st.Environment, ",") != "DB_PASSWORD=s3cret-value,MODE=prod" {
		t.Fatalf("after saving the form unchanged: %+v", st)
	}

	edit(`v.memory = -5;`)
	b.Click("#edit-service-submit")
	b.WaitText("#edit-service-error", "memory")
	if st := get(); st.Code != "docker.io/library/nginx:latest" || st.Rollout != nil {
		t.Fatalf("a bad edit changed the service: %+v", st)
	}
	b.Screenshot("problem")
	b.Click("dialog.modal .btn-secondary")

	edit(`v.code = "docker.io/library/nginx:1.27"; v.environment = ["DB_PASSWORD=••••••", "MODE=staging"];`)
	b.Click("#edit-service-submit")
	b.WaitText(".service .rollout", "Rolling out an edit: 1 of 1 instance still on the old spec")
	b.WaitText(".service .instances", "old spec")
	b.WaitText(".service .facts", "docker.io/library/nginx:1.27")
	st := get()
	if st.Code != "docker.io/library/nginx:1.27" || strings.Join(st.Environment, ",") != "DB_PASSWORD=s3cret-value,MODE=staging" ||
		st.Rollout == nil || st.Rollout.Outdated != 1 || len(st.Instances) != 2 || !st.Instances[0].Outdated || st.Instances[1].Outdated {
		t.Errorf("after the edit: %+v", st)
	}
	b.Screenshot("rolling")
}
