package browsertest

import (
	"net/http"
	"strconv"
	"testing"
)

// TestServiceJobs: the services page shows a service's job list: the
// versions, who owns which job, and the jobs nobody owns (here every one:
// no cluster runs the instance). A new list shows without a reload; a
// service without jobs shows no jobs panel.
func TestServiceJobs(t *testing.T) {
	s := startStack(t)
	var sla map[string]any
	if err := jsonUnmarshal(nginxSLA(t), &sla); err != nil {
		t.Fatal(err)
	}
	ms := sla["applications"].([]any)[0].(map[string]any)["microservices"].([]any)
	ms[0].(map[string]any)["jobs"] = []string{"cam-1", "cam-2", "cam-3"}
	var out []app
	if code := s.api("POST", "/api/application/", sla, &out); code != http.StatusOK || len(out) != 1 {
		t.Fatalf("deploy: %d %v", code, out)
	}
	a := out[0]
	svc := a.Microservices[0]
	if code := s.api("POST", "/api/service/"+svc+"/instance", nil, nil); code != http.StatusOK {
		t.Fatalf("add instance: %d", code)
	}
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Open("#/apps/" + a.ID)
	panel := `.service [data-jobs="` + svc + `"]`
	b.WaitText(panel+" .sub-title", "Jobs (3)")
	b.WaitText(panel+" .jobs-note", "List version 1")
	b.WaitText(panel+" .jobs-unowned-count", "3 without an owner")
	b.WaitText(panel+` tr[data-row="unowned"]`, "cam-2")
	b.Screenshot("unowned")

	// A new list, through the API: the page follows.
	if code := s.api("PUT", "/api/service/"+svc+"/jobs", map[string]any{"jobs": []string{"cam-1", "cam-2", "cam-3", "cam-4"}}, nil); code != http.StatusOK {
		t.Fatalf("set jobs: %d", code)
	}
	b.WaitText(panel+" .sub-title", "Jobs (4)")
	b.WaitText(panel+" .jobs-note", "List version 2")
	b.WaitText(panel+` tr[data-row="unowned"]`, "cam-4")

	// Emptied: no jobs, no panel.
	if code := s.api("PUT", "/api/service/"+svc+"/jobs", map[string]any{"jobs": []string{}}, nil); code != http.StatusOK {
		t.Fatalf("empty jobs: %d", code)
	}
	b.WaitJS("the jobs panel goes with the list", "!document.querySelector("+strconv.Quote(panel)+")")
	b.Screenshot("")
}
