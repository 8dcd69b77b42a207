package apitest

import (
	"net/http"
	"slices"
	"testing"
)

// TestCompletionsAPI: a one_shot service with completions is created with
// its instances 0..N-1 and shows completions, backoff_limit and succeeded;
// no instance is added to it; completions on a long-running service is
// refused with its field and stores nothing.
func TestCompletionsAPI(t *testing.T) {
	r := startRoot(t, "", nil)
	admin := r.adminToken()
	doc := testSLA("indexed")
	m := doc["applications"].([]any)[0].(map[string]any)["microservices"].([]any)[0].(map[string]any)
	m["one_shot"], m["completions"] = true, 3
	app := r.createApp(admin, doc, "indexed")
	var svc struct {
		Completions  *int `json:"completions"`
		BackoffLimit *int `json:"backoff_limit"`
		Succeeded    int  `json:"succeeded"`
		InstanceList []struct {
			N int `json:"instance_number"`
		} `json:"instance_list"`
	}
	r.must("GET", "/api/service/"+app.Microservices[0], admin, nil, &svc)
	var nums []int
	for _, in := range svc.InstanceList {
		nums = append(nums, in.N)
	}
	slices.Sort(nums)
	if svc.Completions == nil || *svc.Completions != 3 || svc.BackoffLimit == nil || *svc.BackoffLimit != 6 ||
		svc.Succeeded != 0 || !slices.Equal(nums, []int{0, 1, 2}) {
		t.Errorf("indexed service: completions %v, backoff_limit %v, succeeded %d, instances %v", svc.Completions, svc.BackoffLimit, svc.Succeeded, nums)
	}
	if resp := r.do("POST", "/api/service/"+app.Microservices[0]+"/instance", admin, nil); resp.Status != http.StatusConflict ||
		resp.errorBody(t).Field != "completions" {
		t.Errorf("adding an instance to an indexed service: want 409 on completions, got %s", resp)
	}

	before := r.snapshot(admin)
	bad := testSLA("bad")
	b := bad["applications"].([]any)[0].(map[string]any)["microservices"].([]any)[0].(map[string]any)
	b["completions"] = 2
	if resp := r.do("POST", "/api/application/", admin, bad); resp.Status != http.StatusBadRequest ||
		resp.errorBody(t).Field != "applications[0].microservices[0].completions" {
		t.Errorf("completions on a long-running service: want 400 on its field, got %s", resp)
	}
	if after := r.snapshot(admin); after != before {
		t.Errorf("a refused SLA changed what is stored")
	}
}
