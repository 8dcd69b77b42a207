package commands

import (
	"net/http"
	"testing"
)

// TestQuotaCommands: quota get shows the caller's or a user's quota with
// its use; quota set sends the flags; a refusal of the root is an error.
func TestQuotaCommands(t *testing.T) {
	status := `{"username":"alice","quota":{"instances":10,"milli_cpu":4000,"memory_mb":0},"used":{"instances":2,"milli_cpu":2000,"memory_mb":200}}`
	run, last := recordingRoot(t, func(w http.ResponseWriter, method, path, _ string) {
		switch method + " " + path {
		case "GET /api/quota", "GET /api/users/alice/quota", "PUT /api/users/alice/quota":
			_, _ = w.Write([]byte(status))
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":"not allowed for your role"}`))
		}
	})
	checkCLI(t, run, last, []cliCase{
		{[]string{"quota", "get"}, ExitOK, "memory (MiB)      200   -", "", "GET /api/quota"},
		{[]string{"quota", "get", "alice"}, ExitOK, "instances         2     10", "", "GET /api/users/alice/quota"},
		{[]string{"quota", "set", "alice", "--instances", "10", "--cpu", "4000"}, ExitOK, "quota of alice", "",
			`PUT /api/users/alice/quota {"instances":10,"milli_cpu":4000,"memory_mb":0}`},
		{[]string{"quota", "set", "bob", "--memory", "512"}, ExitError, "", "not allowed for your role",
			`PUT /api/users/bob/quota {"instances":0,"milli_cpu":0,"memory_mb":512}`},
		{[]string{"-o", "json", "quota", "get"}, ExitOK, `"milli_cpu": 4000`, "", "GET /api/quota"},
	})
}
