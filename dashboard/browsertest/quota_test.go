package browsertest

import (
	"testing"
)

// TestQuotaOnUsersPage: an admin sets a user's quota on the users page (a
// missing user is named in the form's error and nothing changes), the
// users table shows it, and the user sees it on the applications page.
func TestQuotaOnUsersPage(t *testing.T) {
	s := startStack(t)
	s.api("POST", "/api/users/", map[string]string{"username": "alice", "password": "alice-password", "role": "user"}, nil)
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	b.Click(`.nav a[data-nav="users"]`)
	b.WaitText("main .table", "alice")

	b.TypeInto("#quota-user", "nobody")
	b.Click("#quota-submit")
	b.WaitText("main form[aria-labelledby=quota-title] .form-error", "No user nobody.")

	b.EvalInto(`(() => { document.querySelector("#quota-user").value = ""; document.querySelector("#quota-instances").value = "";
		document.querySelector("#quota-memory").value = ""; return true; })()`, new(bool))
	b.TypeInto("#quota-user", "alice")
	b.TypeInto("#quota-instances", "3")
	b.TypeInto("#quota-memory", "500")
	b.Click("#quota-submit")
	b.WaitText(".toasts", "Set the quota of alice.")
	b.WaitText("main .table", "3 instances · 500 MiB")
	var q struct {
		Quota struct {
			Instances int   `json:"instances"`
			MilliCPU  int64 `json:"milli_cpu"`
			MemoryMB  int64 `json:"memory_mb"`
		} `json:"quota"`
	}
	s.api("GET", "/api/users/alice/quota", nil, &q)
	if q.Quota.Instances != 3 || q.Quota.MemoryMB != 500 || q.Quota.MilliCPU != 0 {
		t.Errorf("stored quota %+v", q.Quota)
	}
	b.Screenshot("users")

	u := newBrowser(t, s, desktopW, desktopH)
	u.Login("alice", "alice-password")
	u.WaitText("#quota-line", "Your quota: instances 0 of 3 · memory 0 of 500 MiB")
	u.Screenshot("own")
}
