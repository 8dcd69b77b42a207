package install

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, path, host string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("GET", "http://x"+path, nil)
	req.URL.Path = path // as sent, uncleaned
	if host != "" {
		req.Host = host
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func newHandler(t *testing.T, cfg Config) *Handler {
	t.Helper()
	if cfg.DownloadsDir == "" {
		cfg.DownloadsDir = t.TempDir()
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// syntaxOK checks a script with sh -n.
func syntaxOK(t *testing.T, script string) {
	t.Helper()
	cmd := exec.Command("sh", "-n")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v\n%s", err, out)
	}
}

func TestScriptsCarryTheRootURLOfTheRequest(t *testing.T) {
	h := newHandler(t, Config{})
	for _, name := range Scripts {
		code, body := get(t, h.Scripts(), "/install/"+name, "10.1.2.3:10000")
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", name, code, body)
		}
		if !strings.Contains(body, "BAKED_ROOT_URL='http://10.1.2.3:10000'\n") {
			t.Errorf("%s does not name the root as the request did:\n%s", name, body[:min(len(body), 600)])
		}
		if !strings.HasPrefix(body, "#!/bin/sh\n") || strings.Contains(body, "{{") {
			t.Errorf("%s: not a rendered shell script", name)
		}
		syntaxOK(t, body)
	}
}

func TestScriptsExternalURLOverridesTheHost(t *testing.T) {
	h := newHandler(t, Config{ExternalURL: "https://root.example.org:8443/"})
	_, body := get(t, h.Scripts(), "/install/worker.sh", "10.1.2.3:10000")
	if !strings.Contains(body, "BAKED_ROOT_URL='https://root.example.org:8443'\n") || strings.Contains(body, "10.1.2.3") {
		t.Errorf("external URL not used:\n%s", body[:600])
	}
	if _, err := New(Config{DownloadsDir: t.TempDir(), ExternalURL: "http://x'; rm -rf /"}); err == nil {
		t.Error("an external URL with a quote was accepted")
	}
}

func TestScriptsRefuseHostileHostsAndUnknownNames(t *testing.T) {
	h := newHandler(t, Config{})
	code, body := get(t, h.Scripts(), "/install/worker.sh", "x';touch /tmp/pwned;'")
	if code != http.StatusBadRequest || !strings.Contains(body, "--external-url") {
		t.Errorf("hostile Host: %d %s", code, body)
	}
	for _, p := range []string{"/install/lib.sh", "/install/getstarted.sh", "/install/nope.sh", "/install/", "/install/../install/worker.sh"} {
		code, body := get(t, h.Scripts(), p, "root:10000")
		if code != http.StatusNotFound || !strings.Contains(body, "/install/worker.sh") {
			t.Errorf("%s: %d %q", p, code, body)
		}
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestDownloadsAndChecksums(t *testing.T) {
	dir := t.TempDir()
	node := []byte("thicket-node for arm64")
	plain := []byte("thicket-net of this root's platform")
	os.WriteFile(filepath.Join(dir, "thicket-node-linux-arm64"), node, 0o755)
	os.WriteFile(filepath.Join(dir, "thicket-net"), plain, 0o755)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("not served"), 0o600)
	os.WriteFile(filepath.Join(filepath.Dir(dir), "outside"), []byte("not served"), 0o600)
	h := newHandler(t, Config{DownloadsDir: dir})
	d := h.Downloads()
	self := runtime.GOOS + "-" + runtime.GOARCH

	code, body := get(t, d, "/download/thicket-node-linux-arm64", "")
	if code != http.StatusOK || body != string(node) {
		t.Errorf("binary: %d %q", code, body)
	}
	code, body = get(t, d, "/download/thicket-node-linux-arm64.sha256", "")
	if want := sum(node) + "  thicket-node-linux-arm64\n"; code != http.StatusOK || body != want {
		t.Errorf("checksum: %d %q, want %q", code, body, want)
	}
	// A plain name is the root's own platform.
	code, body = get(t, d, "/download/thicket-net-"+self, "")
	if code != http.StatusOK || body != string(plain) {
		t.Errorf("plain binary for %s: %d %q", self, code, body)
	}
	code, body = get(t, d, "/download/thicket-net-"+self+".sha256", "")
	if want := sum(plain) + "  thicket-net-" + self + "\n"; body != want {
		t.Errorf("plain checksum: %d %q, want %q", code, body, want)
	}
	// ...and no other.
	other := "linux-riscv64"
	if self == other {
		other = "linux-amd64"
	}
	code, body = get(t, d, "/download/thicket-net-"+other, "")
	if code != http.StatusNotFound || !strings.Contains(body, "thicket-net-"+other+" into its downloads directory") {
		t.Errorf("other platform: %d %q", code, body)
	}

	for path, want := range map[string]string{
		"/download/thicket-nope-linux-amd64":        `unknown binary "thicket-nope"`,
		"/download/secret":                          "invalid download name",
		"/download/thicket-cluster-linux-amd64":     "not available on this root",
		"/download/../outside":                      "invalid download name",
		"/download/..%2Foutside":                    "invalid download name",
		"/download/thicket-node-linux-../../secret": "invalid download name",
		"/download/.thicket-node-linux-arm64":       "invalid download name",
		"/download/thicket-node-Linux-arm64":        "invalid platform",
		"/download/":                                "invalid download name",
	} {
		code, body := get(t, d, path, "")
		if code != http.StatusNotFound || !strings.Contains(body, want) {
			t.Errorf("%s: %d %q, want 404 with %q", path, code, body, want)
		}
	}
}

func TestChecksumIsCachedBySizeAndMtime(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "thicket-node-linux-arm64")
	os.WriteFile(file, []byte("aaaa"), 0o755)
	mtime := time.Now().Add(-time.Hour).Truncate(time.Second)
	os.Chtimes(file, mtime, mtime)
	h := newHandler(t, Config{DownloadsDir: dir})
	first, _, err := h.checksum(file)
	if err != nil || first != sum([]byte("aaaa")) {
		t.Fatalf("%s %v", first, err)
	}
	// Same size and mtime: the cached sum (the file is not read again).
	os.WriteFile(file, []byte("bbbb"), 0o755)
	os.Chtimes(file, mtime, mtime)
	if again, _, _ := h.checksum(file); again != first {
		t.Errorf("not cached: %s", again)
	}
	// A new mtime: computed again.
	os.Chtimes(file, mtime.Add(time.Second), mtime.Add(time.Second))
	if now, _, _ := h.checksum(file); now != sum([]byte("bbbb")) {
		t.Errorf("stale after a change: %s", now)
	}
}

func TestDefaultDownloadsDirIsTheExecutables(t *testing.T) {
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	if h.Dir() != filepath.Dir(exe) {
		t.Errorf("downloads dir %s, want %s", h.Dir(), filepath.Dir(exe))
	}
	if _, err := New(Config{DownloadsDir: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing downloads dir was accepted")
	}
}

// scripts/getstarted.sh is generated from the templates.
func TestGetStartedScriptIsUpToDate(t *testing.T) {
	want, err := Render("getstarted.sh", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../../scripts/getstarted.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("scripts/getstarted.sh is out of date: run go generate ./root_orchestrator/internal/install")
	}
	syntaxOK(t, string(want))
	for _, name := range []string{"lib.sh", "nope.sh"} {
		if _, err := Render(name, ""); err == nil {
			t.Errorf("Render(%s) succeeded", name)
		}
	}
}

func runScript(t *testing.T, script string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-s", "--"}, args...)...)
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestScriptsRefuseBadOptions(t *testing.T) {
	for _, name := range []string{"worker.sh", "cluster.sh", "getstarted.sh"} {
		b, err := Render(name, "http://root:10000")
		script := string(b)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := runScript(t, script, nil, "--bogus"); err == nil || !strings.Contains(out, name+": error: unknown option: --bogus (see --help)") {
			t.Errorf("%s --bogus: %v %q", name, err, out)
		}
		if out, err := runScript(t, script, nil, "--data-dir"); err == nil || !strings.Contains(out, "--data-dir needs a value") {
			t.Errorf("%s --data-dir: %v %q", name, err, out)
		}
		if out, err := runScript(t, script, nil, "--help"); err != nil || !strings.Contains(out, "Usage: "+name) {
			t.Errorf("%s --help: %v %q", name, err, out)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"worker.sh", "cluster.sh"} {
		b, err := Render(name, "http://root:10000")
		if err != nil {
			t.Fatal(err)
		}
		for file, want := range map[string]string{"/nonexistent/token": "--token-file: cannot read /nonexistent/token", empty: "--token-file: " + empty + " is empty"} {
			if out, err := runScript(t, string(b), nil, "--token-file", file); err == nil || !strings.Contains(out, want) {
				t.Errorf("%s --token-file %s: %v %q, want %q", name, file, err, out, want)
			}
		}
	}
}

// The systemd side of the services library, against a fake systemctl that
// records its calls (this machine need not run systemd).
func TestSystemdUnits(t *testing.T) {
	dir := t.TempDir()
	bin, units, state := filepath.Join(dir, "bin"), filepath.Join(dir, "units"), filepath.Join(dir, "state")
	for _, d := range []string{bin, units, state} {
		os.Mkdir(d, 0o755)
	}
	calls := filepath.Join(dir, "calls")
	os.WriteFile(filepath.Join(bin, "systemctl"), []byte(`#!/bin/sh
echo "$*" >>"`+calls+`"
case $1 in
is-active) [ -f "`+state+`/$3" ] ;;
start | restart) touch "`+state+`/$2" ;;
stop) rm -f "`+state+`/$2" ;;
esac
`), 0o755)
	var lib bytes.Buffer
	if err := templates.ExecuteTemplate(&lib, "lib.sh", Data{}); err != nil {
		t.Fatal(err)
	}
	script := "set -eu\nPROG=test\nBAKED_ROOT_URL=\n" + lib.String() + `
usage() { :; }
script_opt() { return 1; }
parse_args "$@"
setup_dirs
INIT=systemd
mkdir -p "$RUN" "$LOGS" "$ETC"
echo systemd >"$RUN/init"
if [ "$ACTION" = stop ]; then stop_all; exit 0; fi
SVC_ARGS=$(lines /opt/thicket-node --name "two words" --pct '50%$HOME')
SVC_ENV="THICKET_NODE_TOKEN_FILE=$(shell_quote "$ETC/node.secret")"
SVC_SECRET=$TOKEN
svc_ensure node
`
	env := []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "THICKET_SYSTEMD_DIR=" + units}
	data := filepath.Join(dir, "data")
	run := func(token string, args ...string) string {
		t.Helper()
		os.Remove(calls)
		out, err := runScript(t, script, append(env, "TOKEN="+token), append([]string{"--data-dir", data}, args...)...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		b, _ := os.ReadFile(calls)
		return strings.TrimSpace(string(b))
	}

	if got := run("tok'en"); got != "daemon-reload\nenable -q thicket-node\nis-active -q thicket-node\nstart thicket-node" {
		t.Errorf("first start: systemctl calls\n%s", got)
	}
	unit, _ := os.ReadFile(filepath.Join(units, "thicket-node.service"))
	for _, want := range []string{
		`ExecStart= "/opt/thicket-node" "--name" "two words" "--pct" "50%%$$HOME"`,
		"EnvironmentFile=-" + data + "/etc/node.env",
		"KillMode=process", "Restart=always", "WantedBy=multi-user.target",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	// The token is in a file of its own, named by the environment: in no
	// unit, environment or command line.
	if env, _ := os.ReadFile(filepath.Join(data, "etc", "node.env")); string(env) != `THICKET_NODE_TOKEN_FILE='`+data+`/etc/node.secret'`+"\n" {
		t.Errorf("environment file %q", env)
	}
	if secret, _ := os.ReadFile(filepath.Join(data, "etc", "node.secret")); string(secret) != "tok'en\n" {
		t.Errorf("secret file %q", secret)
	}
	for _, f := range []string{"node.env", "node.secret"} {
		if fi, err := os.Stat(filepath.Join(data, "etc", f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v", f, err, fi.Mode())
		}
	}
	if strings.Contains(string(unit), "tok'en") {
		t.Errorf("the unit holds the token:\n%s", unit)
	}
	// Again: nothing changes.
	if got := run("tok'en"); got != "enable -q thicket-node\nis-active -q thicket-node" {
		t.Errorf("second start: systemctl calls\n%s", got)
	}
	// A new token: restarted.
	if got := run("new"); got != "enable -q thicket-node\nis-active -q thicket-node\nrestart thicket-node" {
		t.Errorf("new token: systemctl calls\n%s", got)
	}
	if got := run("", "--stop"); got != "stop thicket-node\ndisable -q thicket-node" {
		t.Errorf("stop: systemctl calls\n%s", got)
	}
	if got := run("", "--stop", "--purge"); !strings.HasSuffix(got, "daemon-reload") {
		t.Errorf("purge: systemctl calls\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(units, "thicket-node.service")); !os.IsNotExist(err) {
		t.Errorf("unit left after --purge: %v", err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("data dir left after --purge: %v", err)
	}
}
