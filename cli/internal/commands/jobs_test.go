package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/thicket-edge/thicket/api"
)

// fakeJobsRoot keeps one service's job list as the root does (without its
// checks) and records the requests.
type fakeJobsRoot struct {
	mu   sync.Mutex
	jobs []string
	ver  int64
	reqs []string
}

func (f *fakeJobsRoot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, strings.TrimSpace(r.Method+" "+r.URL.EscapedPath()+" "+string(body)))
	w.Header().Set("Content-Type", "application/json")
	var in api.JobList
	_ = json.Unmarshal(body, &in)
	const jobs = "/api/service/svc1/jobs"
	switch p := r.URL.EscapedPath(); {
	case r.Method == "POST" && p == "/api/auth/login":
		_, _ = w.Write([]byte(`{"token":"t","refresh_token":"r","expires_in":3600,"username":"alice","role":"user"}`))
		return
	case r.Method == "GET" && p == "/api/service/svc1":
		_, _ = w.Write([]byte(`{"microserviceID":"svc1","microservice_name":"web","microservice_namespace":"ns","app_name":"shop","app_ns":"ns","instance_list":[]}`))
		return
	case r.Method == "GET" && p == jobs:
	case r.Method == "PUT" && p == jobs:
		f.jobs = in.Jobs
		if in.URL != "" {
			f.jobs = []string{"from-url"}
		}
		f.ver++
	case r.Method == "POST" && p == jobs:
		f.jobs = append(f.jobs, in.Jobs...)
		if in.URL != "" {
			f.jobs = append(f.jobs, "more-from-url")
		}
		f.ver++
	case r.Method == "DELETE" && strings.HasPrefix(p, jobs+"/"):
		i := slices.Index(f.jobs, strings.TrimPrefix(r.URL.Path, jobs+"/"))
		if i < 0 {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"job is not in the service's list","field":"job"}`))
			return
		}
		f.jobs = slices.Delete(f.jobs, i, i+1)
		f.ver++
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not found"}`))
		return
	}
	sj := api.ServiceJobs{ServiceID: "svc1", Jobs: f.jobs, Version: f.ver, LeaseS: 30, AssignmentVersion: 7,
		Assignment: map[string]int{}, Instances: []api.JobHolder{{InstanceNumber: 0, Status: "RUNNING", Version: 7, Jobs: []string{}}}}
	for i, j := range f.jobs {
		if i%2 == 0 {
			sj.Assignment[j] = 0
		} else {
			sj.Unowned = append(sj.Unowned, j)
		}
	}
	_ = json.NewEncoder(w).Encode(sj)
}

// TestJobsCommands: set (arguments, a file, stdin, --none), add, rm and ls
// send what they say and print the list with its owners.
func TestJobsCommands(t *testing.T) {
	f := &fakeJobsRoot{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "jobs.txt")
	if err := os.WriteFile(file, []byte("cam-1\n\n  cam-2 \r\ncam-3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), "v0", append([]string{"--config", dir, "--server", srv.URL}, args...), strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, errs := run("", "login", "-u", "alice", "-p", "pw"); code != ExitOK {
		t.Fatalf("login: %d %s", code, errs)
	}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		out   string // a part of stdout
		req   string // the last request; "" when none may be sent
		jobs  []string
	}{
		{name: "set from a file", args: []string{"jobs", "set", "svc1", "-f", file}, out: "3 jobs, list version 1",
			req: `PUT /api/service/svc1/jobs {"jobs":["cam-1","cam-2","cam-3"]}`, jobs: []string{"cam-1", "cam-2", "cam-3"}},
		{name: "add arguments", args: []string{"jobs", "add", "svc1", "a/b", "c"}, out: "5 jobs, list version 2",
			req: `POST /api/service/svc1/jobs {"jobs":["a/b","c"]}`, jobs: []string{"cam-1", "cam-2", "cam-3", "a/b", "c"}},
		{name: "rm escapes", args: []string{"jobs", "rm", "svc1", "a/b", "cam-1"}, out: "3 jobs, list version 4",
			req: `DELETE /api/service/svc1/jobs/cam-1`, jobs: []string{"cam-2", "cam-3", "c"}},
		{name: "rm stops at a missing job", args: []string{"jobs", "rm", "svc1", "nope", "c"}, code: ExitError,
			req: `DELETE /api/service/svc1/jobs/nope`, jobs: []string{"cam-2", "cam-3", "c"}},
		{name: "set from stdin", stdin: "x\ny\n", args: []string{"jobs", "set", "svc1", "-f", "-"}, out: "2 jobs",
			req: `PUT /api/service/svc1/jobs {"jobs":["x","y"]}`, jobs: []string{"x", "y"}},
		{name: "set nothing is no empty list", args: []string{"jobs", "set", "svc1"}, code: ExitUsage, jobs: []string{"x", "y"}},
		{name: "add nothing", args: []string{"jobs", "add", "svc1"}, code: ExitUsage, jobs: []string{"x", "y"}},
		{name: "ls", args: []string{"jobs", "ls", "svc1"}, out: "x    #0        RUNNING\ny    none",
			req: `GET /api/service/svc1/jobs`, jobs: []string{"x", "y"}},
		{name: "ls json", args: []string{"-o", "json", "jobs", "ls", "svc1"}, out: `"assignment_version": 7`,
			req: `GET /api/service/svc1/jobs`, jobs: []string{"x", "y"}},
		{name: "set --none", args: []string{"jobs", "set", "svc1", "--none"}, out: "0 jobs",
			req: `PUT /api/service/svc1/jobs {"jobs":[]}`, jobs: []string{}},
		{name: "set --url", args: []string{"jobs", "set", "svc1", "--url", "https://lists.example/cams.txt"}, out: "1 job",
			req: `PUT /api/service/svc1/jobs {"jobs":null,"url":"https://lists.example/cams.txt"}`, jobs: []string{"from-url"}},
		{name: "add --url", args: []string{"jobs", "add", "svc1", "--url", "https://lists.example/more.txt"}, out: "2 jobs",
			req: `POST /api/service/svc1/jobs {"jobs":null,"url":"https://lists.example/more.txt"}`, jobs: []string{"from-url", "more-from-url"}},
		{name: "--url with jobs", args: []string{"jobs", "set", "svc1", "a", "--url", "https://x/y"}, code: ExitUsage, jobs: []string{"from-url", "more-from-url"}},
		{name: "--url with --none", args: []string{"jobs", "set", "svc1", "--none", "--url", "https://x/y"}, code: ExitUsage, jobs: []string{"from-url", "more-from-url"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.mu.Lock()
			n := len(f.reqs)
			f.mu.Unlock()
			code, out, errs := run(tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) {
				t.Errorf("exit %d, out %q, err %q; want %d and %q", code, out, errs, tc.code, tc.out)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			last := ""
			if len(f.reqs) > n {
				last = f.reqs[len(f.reqs)-1]
			}
			if tc.req == "" && len(f.reqs) > n && strings.Contains(last, "/jobs") {
				t.Errorf("sent %q", last)
			}
			if tc.req != "" && last != tc.req {
				t.Errorf("last request %q, want %q", last, tc.req)
			}
			if !slices.Equal(f.jobs, tc.jobs) && !(len(f.jobs) == 0 && len(tc.jobs) == 0) {
				t.Errorf("list %q, want %q", f.jobs, tc.jobs)
			}
		})
	}
}
