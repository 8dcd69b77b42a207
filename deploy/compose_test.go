package deploy

// These tests check docker-compose.yml, deploy/docker/Dockerfile and
// .dockerignore statically, against the workspace and the binaries themselves
// (built as the Dockerfile builds them, CGO_ENABLED=0, and asked for --help):
// build targets, base images, entrypoints, users, environment variables,
// ports, volumes, and how the cluster gets the root's join token; and compose
// itself reads the file (`docker-compose config -q`, `docker compose config
// -q`). TestComposeRun (compose_run_test.go) then runs it on a dockerd: no
// registry is reachable where the tests run, so it builds the images from
// binaries built on the host instead of in the golang builder stage.

import (
	"bytes"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	composeFile    = repo + "/docker-compose.yml"
	buildStageName = "build"
	builderImage   = "golang:1.26"
	// nonRoot are the binaries whose images must not run as root: they need
	// only a writable data volume.
	rootTarget    = "thicket-root"
	clusterTarget = "thicket-cluster"
)

// compose is the part of the Compose specification docker-compose.yml may
// use. Decoding rejects any other key, so that a misspelt key (enviroment,
// volume) fails here rather than being ignored by docker; add a key here
// when the file starts to use it. There is no top-level name: Debian's
// docker-compose (1.29) rejects it.
type compose struct {
	Services map[string]*service   `yaml:"services"`
	Volumes  map[string]*yaml.Node `yaml:"volumes"`
}

type service struct {
	Build       *build            `yaml:"build"`
	Image       string            `yaml:"image"`
	Profiles    []string          `yaml:"profiles"`
	Restart     string            `yaml:"restart"`
	ReadOnly    bool              `yaml:"read_only"`
	Tmpfs       []string          `yaml:"tmpfs"`
	User        string            `yaml:"user"`
	Privileged  bool              `yaml:"privileged"`
	NetworkMode string            `yaml:"network_mode"`
	DependsOn   []string          `yaml:"depends_on"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
}

type build struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
	Target     string `yaml:"target"`
}

func loadCompose(t *testing.T) *compose {
	t.Helper()
	data, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml: no services")
	}
	return &c
}

var varRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$\$|\$`)

// interpolate evaluates ${VAR}, ${VAR:-default} and $$ as Compose does with
// none of the variables set, and fails on syntax Compose would reject.
func interpolate(t *testing.T, where, s string) string {
	t.Helper()
	return varRE.ReplaceAllStringFunc(s, func(m string) string {
		switch {
		case m == "$$":
			return "$"
		case m == "$":
			t.Errorf("%s: a lone $ in %q (write $$ for a dollar)", where, s)
			return ""
		}
		sub := varRE.FindStringSubmatch(m)
		switch sub[2] {
		case ":-", "-":
			return sub[3]
		case ":?", "?":
			// Compose fails on this even for services of inactive profiles.
			t.Errorf("%s: required variable %s would stop every `docker compose` command when unset", where, sub[1])
		}
		return ""
	})
}

// mount is a short-syntax volume: source (a named volume or a host path),
// target, options.
type mount struct{ Source, Target, Options string }

func parseMount(v string) mount {
	parts := strings.Split(v, ":")
	m := mount{Source: parts[0]}
	if len(parts) > 1 {
		m.Target = parts[1]
	}
	if len(parts) > 2 {
		m.Options = parts[2]
	}
	return m
}

func (m mount) named() bool {
	return !strings.HasPrefix(m.Source, "/") && !strings.HasPrefix(m.Source, ".")
}

// mountAt returns the mount of s whose target holds file (the longest).
func (s *service) mountAt(file string) (mount, bool) {
	var best mount
	found := false
	for _, v := range s.Volumes {
		m := parseMount(v)
		if (file == m.Target || strings.HasPrefix(file, strings.TrimSuffix(m.Target, "/")+"/")) && len(m.Target) >= len(best.Target) {
			best, found = m, true
		}
	}
	return best, found
}

// publishedPorts returns the container ports ("10000/tcp") s publishes.
func publishedPorts(t *testing.T, name string, s *service) []string {
	var out []string
	for _, p := range hostPorts(t, name, s) {
		if p.host == 0 {
			t.Errorf("service %s: port %s publishes on a random host port; name it (host:container)", name, p.container)
		}
		out = append(out, p.container)
	}
	return out
}

type hostPort struct {
	host      int    // 0: none given (a random one)
	container string // "10000/tcp"
}

// hostPorts reads the ports a service publishes ([ip:]host:container[/proto]).
func hostPorts(t *testing.T, name string, s *service) []hostPort {
	var out []hostPort
	for _, p := range s.Ports {
		spec, proto, ok := strings.Cut(interpolate(t, name+".ports", p), "/")
		if !ok {
			proto = "tcp"
		}
		parts := strings.Split(spec, ":")
		hp := hostPort{container: parts[len(parts)-1] + "/" + proto}
		if len(parts) > 1 {
			h, err := strconv.Atoi(parts[len(parts)-2])
			if err != nil {
				t.Errorf("service %s: port %q: %v", name, p, err)
			}
			hp.host = h
		}
		out = append(out, hp)
	}
	return out
}

// image is what the tests know about one Dockerfile target.
type image struct {
	Binary string // the entrypoint's binary, a cmd/ name
	User   string // USER of the final stage; "" is root
	Chowns map[string]string
	Expose []string
}

// dockerTargets checks every target a service builds, and returns what the
// test knows about each, by target name.
func dockerTargets(t *testing.T, c *compose, help map[string]*helpDoc) map[string]*image {
	t.Helper()
	images := map[string]*image{}
	parsed := map[string][]*stage{}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if s.Build == nil {
			if s.Image == "" {
				t.Errorf("service %s: neither build nor image", name)
			}
			continue
		}
		b := s.Build
		if filepath.Clean(b.Context) != "." {
			t.Errorf("service %s: build context %q: the workspace (.) is needed to build any binary", name, b.Context)
		}
		df := filepath.Join(repo, b.Context, b.Dockerfile)
		if b.Dockerfile == "" || b.Target == "" {
			t.Errorf("service %s: build needs dockerfile and target", name)
			continue
		}
		stages, ok := parsed[df]
		if !ok {
			if _, err := os.Stat(df); err != nil {
				t.Errorf("service %s: %v", name, err)
				continue
			}
			stages = parseDockerfile(t, df)
			parsed[df] = stages
			checkBuilder(t, b.Dockerfile, stages)
		}
		ch := chain(stages, b.Target)
		if len(ch) == 0 {
			t.Errorf("service %s: %s has no stage %q", name, b.Dockerfile, b.Target)
			continue
		}
		base := ch[len(ch)-1].From
		if base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
			t.Errorf("target %s: built FROM %q; want scratch or gcr.io/distroless/static", b.Target, base)
		}
		buildStage := stageNamed(stages, buildStageName)
		cmds, outDir, optional := builtCmds(buildStage)
		built := map[string]bool{}
		for _, p := range cmds {
			if !isMainPackage(t, p) && !optional[p] {
				t.Errorf("%s: go build ./%s: no main package there", b.Dockerfile, p)
			}
			built[path.Base(p)] = true
		}
		ep := entrypoint(t, b.Target, ch)
		src := installedFrom(ch, buildStageName, ep[0])
		bin := path.Base(src)
		switch {
		case src == "":
			t.Errorf("target %s: the entrypoint %s is not copied from the %s stage", b.Target, ep[0], buildStageName)
		case path.Dir(src) != path.Clean(outDir):
			t.Errorf("target %s: the entrypoint comes from %s, not from go build's output %s", b.Target, src, outDir)
		case !built[bin] || optional[bin]:
			t.Errorf("target %s: the builder does not always build %s (builds %v)", b.Target, bin, cmds)
		case help[bin] == nil:
			t.Errorf("target %s: %s is none of the project's binaries", b.Target, bin)
		}
		if path.Base(ep[0]) != b.Target {
			t.Errorf("target %s runs %s: name targets after their binary", b.Target, ep[0])
		}
		if !slices.Contains(all(ch, "COPY"), "--from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt") {
			t.Errorf("target %s: no CA certificates", b.Target)
		}
		img := &image{Binary: bin, User: last(ch, "USER"), Chowns: map[string]string{}}
		for _, args := range all(ch, "COPY") {
			if cp := parseCopy(args); cp.Chown != "" {
				img.Chowns[path.Clean(cp.Dest)] = cp.Chown
			}
		}
		for _, e := range all(ch, "EXPOSE") {
			img.Expose = append(img.Expose, strings.Fields(e)...)
		}
		images[b.Target] = img
	}
	return images
}

func stageNamed(stages []*stage, name string) *stage {
	for _, st := range stages {
		if st.Name == name {
			return st
		}
	}
	return &stage{}
}

// checkBuilder checks the stage that compiles the binaries.
func checkBuilder(t *testing.T, file string, stages []*stage) {
	t.Helper()
	buildStage := stageNamed(stages, buildStageName)
	if buildStage.From != builderImage {
		t.Errorf("%s: stage %q FROM %q; want %s", file, buildStageName, buildStage.From, builderImage)
	}
	if env := strings.Join(all([]*stage{buildStage}, "ENV"), " "); !strings.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("%s: the builder must set ENV CGO_ENABLED=0 (FROM scratch has no libc)", file)
	}
}

// isMainPackage reports whether the workspace directory p holds a main
// package.
func isMainPackage(t *testing.T, p string) bool {
	files, err := filepath.Glob(filepath.Join(repo, p, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`(?m)^package main$`).Match(data) && !strings.HasSuffix(f, "_test.go") {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// setting returns what a binary runs with for flag: the service's
// environment when it sets the flag's variable, else the flag's default.
func setting(t *testing.T, name string, s *service, h *helpDoc, flag string) string {
	t.Helper()
	f := h.flag(flag)
	if f == nil {
		t.Fatalf("no flag --%s in --help", flag)
	}
	if v, ok := s.Environment[f.Env]; ok && f.Env != "" {
		if v := interpolate(t, name+".environment."+f.Env, v); v != "" {
			return v
		}
	}
	return f.Default
}

func TestCompose(t *testing.T) {
	c := loadCompose(t)
	help := binaries(t)
	images := dockerTargets(t, c, help)

	// Root and cluster run by default; the worker and the external store
	// and broker only with their profiles.
	var always []string
	for _, name := range sortedKeys(c.Services) {
		if len(c.Services[name].Profiles) == 0 {
			always = append(always, name)
		}
	}
	if !slices.Equal(always, []string{clusterTarget, rootTarget}) {
		t.Errorf("services without a profile: %v; want %s and %s", always, rootTarget, clusterTarget)
	}

	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		for _, d := range s.DependsOn {
			if c.Services[d] == nil {
				t.Errorf("service %s depends on unknown service %s", name, d)
			}
		}
		for _, v := range s.Volumes {
			if m := parseMount(interpolate(t, name+".volumes", v)); m.named() && c.Volumes == nil || m.named() && !mapHas(c.Volumes, m.Source) {
				t.Errorf("service %s mounts volume %s, which volumes: does not declare", name, m.Source)
			} else if strings.HasPrefix(m.Source, ".") {
				if _, err := os.Stat(filepath.Join(repo, m.Source)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, m.Source, err)
				}
			}
		}
		if s.Build == nil {
			continue
		}
		img := images[s.Build.Target]
		if img == nil {
			continue
		}
		h := help[img.Binary]
		for _, k := range sortedKeys(s.Environment) {
			if !strings.HasPrefix(k, "THICKET_") {
				t.Errorf("service %s: environment %s is not a THICKET_ setting", name, k)
			} else if !h.Envs[k] {
				t.Errorf("service %s: %s does not read %s (its --help names %v)", name, img.Binary, k, sortedKeys(h.Envs))
			}
			interpolate(t, name+".environment."+k, s.Environment[k])
		}

		// Data dir: a volume, writable by the image's user.
		dataDir := setting(t, name, s, h, "data-dir")
		m, ok := s.mountAt(dataDir)
		if !ok || m.Target != dataDir || strings.Contains(m.Options, "ro") {
			t.Errorf("service %s: no writable volume at the data dir %s", name, dataDir)
		}
		if img.Binary == rootTarget || img.Binary == clusterTarget {
			if u := strings.Split(img.User, ":")[0]; u == "" || u == "0" || u == "root" || s.User != "" {
				t.Errorf("service %s: runs as %q (image) / %q (compose); want a non-root user", name, img.User, s.User)
			}
			if img.Chowns[dataDir] != img.User {
				t.Errorf("target %s: the data dir %s is owned by %q, not by the image's user %q: a new volume would not be writable",
					s.Build.Target, dataDir, img.Chowns[dataDir], img.User)
			}
			if s.ReadOnly && !slices.Contains(s.Tmpfs, "/tmp") {
				t.Errorf("service %s: read_only without a tmpfs at /tmp (the embedded store's socket)", name)
			}
			// Published ports are the listeners'.
			var want []string
			for _, f := range h.Flags {
				if strings.HasSuffix(f.Name, "listen") {
					_, port, err := net.SplitHostPort(setting(t, name, s, h, f.Name))
					if err != nil {
						t.Fatalf("--%s: %v", f.Name, err)
					}
					want = append(want, port+"/tcp")
				}
			}
			checkSameSet(t, "service "+name+" publishes", publishedPorts(t, name, s), want)
			checkSameSet(t, "target "+s.Build.Target+" exposes", img.Expose, want)
		}
	}

	root, cluster := c.Services[rootTarget], c.Services[clusterTarget]
	if root == nil || cluster == nil {
		t.Fatal("no thicket-root or thicket-cluster service")
	}
	// The cluster reads the join token the root writes into its data volume.
	tokenFile := interpolate(t, "cluster", cluster.Environment["THICKET_JOIN_TOKEN_FILE"])
	rootData, _ := root.mountAt(setting(t, rootTarget, root, help[rootTarget], "data-dir"))
	shared, ok := cluster.mountAt(tokenFile)
	switch {
	case tokenFile == "":
		t.Error("thicket-cluster: no THICKET_JOIN_TOKEN_FILE: it cannot join the root")
	case !ok || shared.Source != rootData.Source || !rootData.named():
		t.Errorf("thicket-cluster: %s is not on the root's data volume %q", tokenFile, rootData.Source)
	case path.Join(shared.Target, rootJoinTokenFile(t)) != tokenFile:
		t.Errorf("thicket-cluster: THICKET_JOIN_TOKEN_FILE %s; the root writes %s", tokenFile, path.Join(shared.Target, rootJoinTokenFile(t)))
	case shared.Options != "ro":
		t.Errorf("thicket-cluster: mount the root's volume read-only, not %q", shared.Options)
	}
	checkURL(t, "thicket-cluster THICKET_ROOT_URL", cluster.Environment["THICKET_ROOT_URL"], "https", rootTarget,
		setting(t, rootTarget, root, help[rootTarget], "listen"))

	// The worker: host network, the host's containerd, paths as containerd
	// sees them, the node join token the cluster uses.
	node, netm := c.Services["thicket-node"], c.Services["thicket-net"]
	if node == nil || netm == nil {
		t.Fatal("no thicket-node or thicket-net service")
	}
	for name, s := range map[string]*service{"thicket-node": node, "thicket-net": netm} {
		if !slices.Equal(s.Profiles, []string{"worker"}) || s.NetworkMode != "host" {
			t.Errorf("service %s: profiles %v network_mode %q; want [worker], host", name, s.Profiles, s.NetworkMode)
		}
	}
	nh := help["thicket-node"]
	for _, flag := range []string{"data-dir", "containerd", "net-socket"} {
		p := setting(t, "thicket-node", node, nh, flag)
		if m, ok := node.mountAt(p); !ok || m.named() || path.Join(m.Source, strings.TrimPrefix(p, m.Target)) != p {
			t.Errorf("thicket-node: --%s %s is not bind-mounted from the same host path (containerd on the host opens it)", flag, p)
		}
	}
	sock := setting(t, "thicket-node", node, nh, "net-socket")
	if netSock := setting(t, "thicket-net", netm, help["thicket-net"], "socket"); netSock != sock {
		t.Errorf("thicket-node uses net socket %s, thicket-net listens on %s", sock, netSock)
	} else if a, _ := node.mountAt(sock); true {
		if b, _ := netm.mountAt(sock); a.Source != b.Source || a.Source == "" {
			t.Errorf("thicket-node and thicket-net do not share the socket's directory (%q, %q)", a.Source, b.Source)
		}
	}
	// The node reads the token, with the pin of the cluster's CA, from the
	// cluster's data volume (never from the environment), and dials the
	// node API over https://.
	clusterData, _ := cluster.mountAt(setting(t, clusterTarget, cluster, help[clusterTarget], "data-dir"))
	nodeTokenFile := interpolate(t, "thicket-node", node.Environment["THICKET_NODE_TOKEN_FILE"])
	if m, ok := node.mountAt(nodeTokenFile); !ok || m.Source != clusterData.Source || !clusterData.named() || m.Options != "ro" ||
		path.Base(nodeTokenFile) != "node-join-token" || path.Dir(nodeTokenFile) != m.Target {
		t.Errorf("thicket-node: THICKET_NODE_TOKEN_FILE %q is not node-join-token on the cluster's data volume %q, mounted read-only", nodeTokenFile, clusterData.Source)
	}
	if mapHas(node.Environment, "THICKET_NODE_TOKEN") {
		t.Error("thicket-node: THICKET_NODE_TOKEN puts the token in the environment (docker inspect); use THICKET_NODE_TOKEN_FILE")
	}
	_, clusterPort, _ := net.SplitHostPort(setting(t, clusterTarget, cluster, help[clusterTarget], "listen"))
	if u, err := url.Parse(node.Environment["THICKET_CLUSTER_URL"]); err != nil || u.Scheme != "https" || u.Hostname() != "127.0.0.1" || u.Port() != clusterPort {
		t.Errorf("thicket-node THICKET_CLUSTER_URL %q; want https://127.0.0.1:%s", node.Environment["THICKET_CLUSTER_URL"], clusterPort)
	}
	if !slices.Contains(publishedPorts(t, clusterTarget, cluster), "10003/tcp") ||
		setting(t, clusterTarget, cluster, help[clusterTarget], "advertise-address") != "127.0.0.1" {
		t.Error("thicket-cluster: a worker on the host network reaches the broker at 127.0.0.1:10003 only if it is published and advertised")
	}
	if ov := setting(t, "thicket-net", netm, help["thicket-net"], "overlay-port"); !slices.Contains(images["thicket-net"].Expose, ov+"/udp") {
		t.Errorf("target thicket-net does not document (EXPOSE) the overlay port %s/udp", ov)
	}
}

func mapHas[V any](m map[string]V, k string) bool { _, ok := m[k]; return ok }

func checkSameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(slices.Compact(g), slices.Compact(w)) {
		t.Errorf("%s %v; want %v", what, got, want)
	}
}

func checkURL(t *testing.T, what, raw, scheme, host, listen string) {
	t.Helper()
	u, err := url.Parse(raw)
	_, port, _ := net.SplitHostPort(listen)
	if err != nil || u.Scheme != scheme || u.Hostname() != host || u.Port() != port {
		t.Errorf("%s %q; want %s://%s:%s", what, raw, scheme, host, port)
	}
}

// rootJoinTokenFile is the file name thicket-root writes the default
// cluster join token to, read from its source (an internal package).
func rootJoinTokenFile(t *testing.T) string {
	data, err := os.ReadFile(filepath.Join(repo, "root_orchestrator", "internal", "server", "server.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`JoinTokenFile\s*=\s*"([^"]+)"`).FindSubmatch(data)
	if m == nil {
		t.Fatal("root_orchestrator/internal/server: no JoinTokenFile constant")
	}
	return string(m[1])
}

// TestDockerignore checks that the build context keeps what the builder
// needs (every go.mod of the repository, every built cmd/) and leaves out the
// local binaries and git history.
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repo, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, strings.Trim(path.Clean(l), "/"))
		}
	}
	ignored := func(p string) bool {
		out := false
		for _, pat := range patterns {
			neg := strings.HasPrefix(pat, "!")
			pat = strings.TrimPrefix(pat, "!")
			for q := p; q != "." && q != "/"; q = path.Dir(q) {
				if ok, _ := path.Match(pat, q); ok || strings.HasPrefix(pat, "**/") && matchAny(strings.TrimPrefix(pat, "**/"), q) {
					out = !neg
					break
				}
			}
		}
		return out
	}
	// The root module and the modules its go.mod replaces with a directory
	// of this repository (the API client).
	mod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	need := []string{"go.work", "go.work.sum", "go.mod", "go.sum", "deploy/docker/Dockerfile"}
	for _, m := range regexp.MustCompile(`(?m)=>\s*\./(\S+)\s*$`).FindAllStringSubmatch(string(mod), -1) {
		need = append(need, m[1]+"/go.mod")
	}
	for _, c := range mainCmds(t) {
		need = append(need, c+"/main.go")
	}
	if len(need) < 8 {
		t.Fatalf("read only %v from go.mod and the commands", need)
	}
	for _, p := range need {
		if ignored(p) {
			t.Errorf(".dockerignore leaves %s out of the build context", p)
		}
	}
	for _, p := range []string{".git/HEAD", "bin/thicket-root"} {
		if !ignored(p) {
			t.Errorf(".dockerignore does not leave out %s", p)
		}
	}
}

func matchAny(pat, p string) bool {
	for ; p != "." && p != "/"; p = path.Dir(p) {
		if ok, _ := path.Match(pat, path.Base(p)); ok {
			return true
		}
	}
	return false
}

// TestComposeConfig runs `config -q` of every compose here: Debian's
// docker-compose (1.29, which CI installs) and compose v2 (`docker compose`).
// Without either, the static checks above are the gate (TestComposeRun fails
// then).
func TestComposeConfig(t *testing.T) {
	var composes [][]string
	if p, err := exec.LookPath("docker-compose"); err == nil {
		composes = append(composes, []string{p})
	}
	if docker, err := exec.LookPath("docker"); err == nil && exec.Command(docker, "compose", "version").Run() == nil {
		composes = append(composes, []string{docker, "compose"})
	}
	if len(composes) == 0 {
		t.Log("neither docker-compose nor docker compose here: checked statically only")
	}
	for _, c := range composes {
		for _, profile := range []string{"", "worker", "external"} {
			args := append(slices.Clone(c[1:]), "-f", composeFile)
			if profile != "" {
				args = append(args, "--profile", profile)
			}
			out, err := exec.Command(c[0], append(args, "config", "-q")...).CombinedOutput()
			if err != nil {
				t.Errorf("%s %s config -q: %v\n%s", c[0], strings.Join(args, " "), err, out)
			}
		}
	}
}
