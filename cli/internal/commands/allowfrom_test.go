package commands

import (
	"net/http"
	"strings"
	"testing"
)

// TestAllowFromCommand: allow-from shows a service's list, replaces it
// with the PEERs (or empties it with --none) and shows the root's answer;
// a refusal of the root is an error.
func TestAllowFromCommand(t *testing.T) {
	svc := func(allow string) string {
		return `{"microserviceID":"s1","microservice_name":"web","app_name":"site","allow_from":` + allow + `}`
	}
	run, last := recordingRoot(t, func(w http.ResponseWriter, method, path, body string) {
		switch method + " " + path {
		case "GET /api/service/s1":
			_, _ = w.Write([]byte(svc(`["carol"]`)))
		case "PUT /api/service/s1/allow-from":
			if body == `{"allow_from":["bo b"]}` {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"allow_from[0]: \"bo b\": user \"bo b\" must match ^[A-Za-z0-9_.-]{1,64}$","field":"allow_from[0]"}`))
				return
			}
			_, _ = w.Write([]byte(svc(strings.TrimSuffix(strings.TrimPrefix(body, `{"allow_from":`), "}"))))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"not found"}`))
		}
	})
	checkCLI(t, run, last, []cliCase{
		{[]string{"allow-from", "s1"}, ExitOK, "site/web: its owner's instances and carol may connect", "", "GET /api/service/s1"},
		{[]string{"allow-from", "s1", "bob", "dave/shop"}, ExitOK, "and bob, dave/shop may connect", "",
			`PUT /api/service/s1/allow-from {"allow_from":["bob","dave/shop"]}`},
		{[]string{"allow-from", "s1", "--none"}, ExitOK, "site/web: only its owner's instances may connect", "",
			`PUT /api/service/s1/allow-from {"allow_from":[]}`},
		{[]string{"allow-from", "s1", "bo b"}, ExitError, "", "must match", `PUT /api/service/s1/allow-from {"allow_from":["bo b"]}`},
		{[]string{"allow-from", "s1", "bob", "--none"}, ExitUsage, "", "--none takes no PEER", `PUT /api/service/s1/allow-from {"allow_from":["bo b"]}`},
		{[]string{"-o", "json", "allow-from", "s1"}, ExitOK, `"allow_from": [`, "", "GET /api/service/s1"},
	})
}
