package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/internal/testharness"
)

func TestMainExitCodes(t *testing.T) {
	dir := t.TempDir()
	down := fmt.Sprintf("http://127.0.0.1:%d", testharness.FreePort(t))
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{args: nil, code: ExitUsage, err: "thicket: expected one of"},
		{args: []string{"--help"}, code: ExitOK, out: "apply"},
		{args: []string{"get"}, code: ExitUsage, err: "expected one of"},
		{args: []string{"get", "pods"}, code: ExitUsage, err: "unexpected argument pods"},
		{args: []string{"-o", "yaml", "get", "apps"}, code: ExitUsage, err: "--output must be one of"},
		{args: []string{"apply"}, code: ExitUsage, err: "missing flags: --file"},
		{args: []string{"apply", "-f", "x.json", "--instances=-1"}, code: ExitUsage, err: "--instances must not be negative"},
		{args: []string{"scale", "web", "x"}, code: ExitUsage, err: "<N>: expected"},
		{args: []string{"logs", "web", "first"}, code: ExitUsage, err: `instance number "first"`},
		{args: []string{"events", "web", "first"}, code: ExitUsage, err: `instance number "first"`},
		{args: []string{"login", "-p", "x", "--password-stdin"}, code: ExitUsage, err: "exclude each other"},
		{args: []string{"login", "-p", "x", "--password-file", "/dev/null"}, code: ExitUsage, err: "exclude each other"},
		{args: []string{"login", "--password-file", "/dev/null"}, code: ExitUsage, err: "--password-file: /dev/null holds no password"},
		{args: []string{"login", "--password-file", "/nonexistent/pw"}, code: ExitError, err: "--password-file: open /nonexistent/pw"},
		{args: []string{"--server", down, "login", "--password-file", pwFile}, code: ExitError, err: "login: cannot reach " + down},
		{args: []string{"--server", "ftp://x", "get", "apps"}, code: ExitUsage, err: "scheme must be http"},
		{args: []string{"version"}, code: ExitOK, out: "thicket v9.9.9 ("},
		{args: []string{"logout"}, code: ExitOK, out: "Not logged in."},
		{args: []string{"get", "apps"}, code: ExitError, err: "thicket: not logged in to https://localhost:10000: run thicket login\n"},
		{args: []string{"--server", down, "get", "apps"}, code: ExitError, err: "not logged in to " + down + ": run thicket login --server " + down},
		{args: []string{"--server", down, "status"}, code: ExitError, err: "thicket: cannot reach " + down + ": connect: connection refused\n"},
		{args: []string{"--server", down, "login", "-p", "pw"}, code: ExitError, err: "login: cannot reach " + down},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"--config", dir}, tc.args...)
		code := Main(context.Background(), "v9.9.9", args, strings.NewReader(""), &out, &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("thicket %s: exit %d, want %d\nstdout: %s\nstderr: %s\nwant stdout ~ %q, stderr ~ %q",
				strings.Join(tc.args, " "), code, tc.code, out.String(), errb.String(), tc.out, tc.err)
		}
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		check func(c *CLI) bool
	}{
		{[]string{"apply", "-f", "-"}, func(c *CLI) bool { return c.Apply.File == "-" && c.Apply.Wait && c.Apply.Instances == 1 }},
		{[]string{"apply", "-f", "a.json", "--wait=false"}, func(c *CLI) bool { return !c.Apply.Wait }},
		{[]string{"apply", "-f", "a.json", "--no-wait", "--instances", "0"}, func(c *CLI) bool { return !c.Apply.Wait && c.Apply.Instances == 0 }},
		{[]string{"scale", "shop/web", "3", "--timeout", "10s"}, func(c *CLI) bool {
			return c.Scale.Service == "shop/web" && c.Scale.Count == 3 && c.Scale.Timeout.Seconds() == 10
		}},
		{[]string{"get", "services", "shop", "-o", "json"}, func(c *CLI) bool { return c.Get.Services.App == "shop" && c.Output == "json" }},
		{[]string{"logs", "web", "2", "-f"}, func(c *CLI) bool { return c.Logs.Instance == "2" && c.Logs.Follow }},
		{[]string{"login", "-u", "bob", "--password-stdin"}, func(c *CLI) bool { return c.Login.Username == "bob" && c.Login.PasswordStdin }},
		{[]string{"login"}, func(c *CLI) bool { return c.Login.Username == "Admin" }},
	} {
		var c CLI
		k, err := kong.New(&c, kong.Vars{"default_server": DefaultServer})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Parse(tc.args); err != nil || !tc.check(&c) {
			t.Errorf("parse %q: %v, %+v", tc.args, err, c)
		}
	}
}

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		want string
	}{
		{nil, ExitOK, ""},
		{usagef("N must not be negative"), ExitUsage, "thicket: N must not be negative\nRun 'thicket --help' for usage.\n"},
		{errors.New("app/web #0 failed: pull: not found"), ExitError, "thicket: app/web #0 failed: pull: not found\n"},
		{&api.StatusError{Status: 400, Field: "sla_version", Message: "sla_version: must be v2.0"}, ExitError,
			"thicket: invalid input: sla_version: must be v2.0\n"},
		{&api.StatusError{Status: 400, Field: "a", Message: "a: x; b[0].c: y"}, ExitError,
			"thicket: invalid input (2 errors):\n  a: x\n  b[0].c: y\n"},
		{&api.StatusError{Status: 404, Message: "not found"}, ExitError, "thicket: not found\n"},
		{api.ErrSessionExpired, ExitError, "thicket: session expired: run thicket login\n"},
		{fmt.Errorf("refresh: %w", api.ErrNotLoggedIn), ExitError, "thicket: refresh: not logged in: run thicket login\n"},
	} {
		var b bytes.Buffer
		if code := report(&b, tc.err); code != tc.code || b.String() != tc.want {
			t.Errorf("report(%v) = %d %q, want %d %q", tc.err, code, b.String(), tc.code, tc.want)
		}
	}
}

func TestByState(t *testing.T) {
	for _, tc := range []struct {
		m    map[string]int
		want string
	}{
		{nil, "0"},
		{map[string]int{"RUNNING": 2}, "2: 2 RUNNING"},
		{map[string]int{"NO_CAPACITY": 1, "RUNNING": 3, "CREATED": 1}, "5: 3 RUNNING, 1 CREATED, 1 NO_CAPACITY"},
	} {
		if got := byState(tc.m); got != tc.want {
			t.Errorf("byState(%v) = %q, want %q", tc.m, got, tc.want)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	writeTable(&b, []string{"ID", "NAME", "STATUS"}, [][]string{{"a1", "shop", "RUNNING"}, {"b22222", "", "x\ty"}})
	want := "ID      NAME  STATUS\na1      shop  RUNNING\nb22222  -     x y\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestCreatedApps(t *testing.T) {
	before := []api.Application{{ApplicationID: "old", ApplicationName: "shop", ApplicationNamespace: "prod"}}
	after := append(before,
		api.Application{ApplicationID: "new1", ApplicationName: "blog", ApplicationNamespace: "prod"},
		api.Application{ApplicationID: "new2", ApplicationName: "other", ApplicationNamespace: "prod"}, // someone else's, meanwhile
		api.Application{ApplicationID: "new3", ApplicationName: "wiki", ApplicationNamespace: "test"})
	var names slaNames
	names.Applications = append(names.Applications,
		struct {
			Name      string `json:"application_name"`
			Namespace string `json:"application_namespace"`
		}{"blog", "prod"},
		struct {
			Name      string `json:"application_name"`
			Namespace string `json:"application_namespace"`
		}{"wiki", "test"})
	var got []string
	for _, a := range createdApps(before, after, names) {
		got = append(got, a.ApplicationID)
	}
	if want := []string{"new1", "new3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("created %v, want %v", got, want)
	}
}

func TestInstanceDocs(t *testing.T) {
	svcs := []api.Service{
		{MicroserviceID: "s2", MicroserviceName: "web", AppName: "shop", InstanceList: []api.Instance{
			{InstanceNumber: 3, ClusterID: "c1"}, {InstanceNumber: 1, ClusterID: "c9"}}},
		{MicroserviceID: "s1", MicroserviceName: "db", AppName: "shop", InstanceList: []api.Instance{{InstanceNumber: 0}}},
	}
	docs := instanceDocs(svcs, map[string]string{"c1": "alpha"})
	var got []string
	for _, d := range docs {
		got = append(got, d.Service+"#"+string(rune('0'+d.InstanceNumber))+"@"+d.ClusterName)
	}
	if want := []string{"shop/db#0@", "shop/web#1@", "shop/web#3@alpha"}; !reflect.DeepEqual(got, want) {
		t.Errorf("instance docs %v, want %v", got, want)
	}
}
