package deploy

// TestComposeRun runs docker-compose.yml for real, on a dockerd of its own:
// it builds the images from this checkout, starts root and cluster with
// compose, attaches a worker from outside compose (thicket-node in a network
// namespace, on the host's containerd, reaching the cluster through the
// published ports), deploys a service to it, then takes everything down and
// checks that nothing is left.
//
// Docker here cannot pull anything (no golang image, no BuildKit frontend), so
// the images are built with the classic builder from a Dockerfile that is
// deploy/docker/Dockerfile with its build stage replaced by the binaries
// `binaries` built on the host (see prebuiltDockerfile): the final stages, and
// so the images, are the ones `docker compose up -d --build` makes.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	rest "github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/testharness"
	"github.com/thicket-edge/thicket/node_engine/testimage"
)

// The outside worker's "machine": a network namespace on a bridge
// (newWorkerHost), the host at workerBridgeAddr, where the worker reaches
// the published ports. The cluster keeps compose's default advertised
// address (127.0.0.1): a node that registers from elsewhere is handed the
// address it dialled. The in-process registry listens there too.
var (
	workerBridgeAddr = testharness.ComposeNetwork.Prefix + ".1"
	workerAddr       = testharness.ComposeNetwork.Prefix + ".2"
)

const (
	dockerfile = repo + "/deploy/docker/Dockerfile"
	// dockerPool is where the test's dockerd takes the compose network's
	// subnet from, instead of docker's 172.17.0.0/16 and up.
	dockerPool = "10.215.0.0/16"
	// caBundle is the host's CA certificates, for the images (Debian's, as
	// in the golang image the builder stage uses).
	caBundle = "/etc/ssl/certs/ca-certificates.crt"
)

func TestComposeRun(t *testing.T) {
	tools := composeTools(t)
	start := time.Now()
	help := binaries(t)
	c := loadCompose(t)
	var b [3]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])

	// Root and cluster: the services compose starts without a profile.
	var services []string
	for _, name := range sortedKeys(c.Services) {
		if s := c.Services[name]; len(s.Profiles) == 0 && s.Build != nil {
			services = append(services, name)
		}
	}
	root, cluster := c.Services[rootTarget], c.Services[clusterTarget]
	if root == nil || cluster == nil || len(services) != 2 {
		t.Fatalf("docker-compose.yml: want services %s and %s without a profile, have %v", rootTarget, clusterTarget, services)
	}
	ports := map[string]int{}
	for _, name := range services {
		for _, p := range hostPorts(t, name, c.Services[name]) {
			if p.host == 0 {
				t.Fatalf("service %s publishes %s on a random host port", name, p.container)
			}
			ports[name+" "+p.container] = p.host
			if l, err := net.Listen("tcp", ":"+strconv.Itoa(p.host)); err != nil {
				t.Fatalf("port %d is taken on this host (docker-compose.yml publishes it for %s): %v", p.host, name, err)
			} else {
				l.Close()
			}
		}
	}
	rootPort := ports[rootTarget+" "+portOf(t, setting(t, rootTarget, root, help[rootTarget], "listen"))]
	clusterPort := ports[clusterTarget+" "+portOf(t, setting(t, clusterTarget, cluster, help[clusterTarget], "listen"))]
	if rootPort == 0 || clusterPort == 0 {
		t.Fatalf("docker-compose.yml does not publish the root's or the cluster's listen port: %v", ports)
	}

	dir := mountedTempDir(t)
	ctxDir := prebuiltContext(t, filepath.Join(dir, "context"))
	host := startDockerd(t, tools.dockerd, filepath.Join(dir, "docker"), "thicket-compose-"+id)
	workerNS := newWorkerHost(t, id)

	override := filepath.Join(dir, "override.yml")
	var ov strings.Builder
	ov.WriteString("# TestComposeRun: the images from the host's binaries (prebuiltDockerfile).\nservices:\n")
	for _, name := range services {
		fmt.Fprintf(&ov, "  %s:\n    build:\n      context: %s\n      dockerfile: Dockerfile\n", name, ctxDir)
	}
	writeTestFile(t, override, ov.String())
	emptyEnv := filepath.Join(dir, "empty.env") // not the checkout's .env
	// The worker below dials the cluster at this host's bridge address:
	// it goes into the cluster's certificate.
	writeTestFile(t, emptyEnv, "THICKET_TLS_SANS="+workerBridgeAddr+"\n")
	p := &project{
		dockerHost: host, dockerCmd: tools.docker, config: filepath.Join(dir, "docker-config"), name: "thkcompose" + id,
		argv: append(slices.Clone(tools.compose), "-f", composeFile, "-f", override, "--project-directory", repo,
			"--env-file", emptyEnv, "-p", "thkcompose"+id),
	}

	// Up, as the README says; the override builds the images from the
	// prebuilt context.
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := p.run(time.Minute, "logs", "--no-color", "--tail", "60")
			t.Logf("--- compose logs ---\n%s", out)
		}
		p.run(2*time.Minute, "down", "-v", "--timeout", "5")
	})
	if out, err := p.run(5*time.Minute, "up", "-d", "--build"); err != nil {
		t.Fatalf("compose up -d --build: %v\n%s", err, testharness.Tail(out, 6000))
	}
	t.Logf("compose up: %v built and started (%s)", services, time.Since(start).Round(time.Second))
	p.netBridge = "br-" + strings.TrimSpace(p.docker(t, "network", "inspect", "-f", "{{printf \"%.12s\" .Id}}", p.name+"_default"))
	ids := map[string]string{}
	for _, name := range services {
		ids[name] = strings.TrimSpace(p.must(t, "ps", "-q", name))
		img := c.Services[name].Image
		checkImage(t, p, c.Services[name].Build.Target, img)
		// What the binaries need at run time, with the compose file's
		// tmpfs and volumes: a /tmp anyone may write (the embedded store's
		// socket), and a data dir of the image's user.
		pid := strings.TrimSpace(p.docker(t, "inspect", "-f", "{{.State.Pid}}", ids[name]))
		h := help[path.Base(c.Services[name].Build.Target)]
		data := setting(t, name, c.Services[name], h, "data-dir")
		if fi, err := os.Stat("/proc/" + pid + "/root/tmp"); err != nil {
			t.Error(err)
		} else if fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
			t.Errorf("%s: /tmp in the container is %v; want drwxrwxrwt (the image's /tmp, copied into the tmpfs)", name, fi.Mode())
		}
		user := strings.TrimSpace(p.docker(t, "image", "inspect", "-f", "{{.Config.User}}", img))
		if fi, err := os.Stat("/proc/" + pid + "/root" + data); err != nil {
			t.Error(err)
		} else if uid := fmt.Sprint(fi.Sys().(*syscall.Stat_t).Uid); uid != strings.Split(user, ":")[0] {
			t.Errorf("%s: the data dir %s belongs to uid %s, not to the image's user %s", name, data, uid, user)
		}
	}

	// The root: published on this host, its admin password in its volume.
	rootData := setting(t, rootTarget, root, help[rootTarget], "data-dir")
	// It serves HTTPS with the CA it made in its volume: trust that one.
	probe := t.TempDir()
	testharness.WaitFor(t, time.Minute, "the root's CA in its volume", func() (bool, string) {
		cmd := exec.Command(p.dockerCmd, "cp", ids[rootTarget]+":"+rootData+"/tls/ca.crt", probe)
		cmd.Env = p.environ()
		out, err := cmd.CombinedOutput()
		return err == nil, string(out)
	})
	caPEM := p.copyOut(t, ids[rootTarget], rootData+"/tls/ca.crt")
	api := rest.NewClient(rest.Config{Address: fmt.Sprintf("https://127.0.0.1:%d", rootPort), CAPEM: []byte(caPEM),
		HTTPClient: &http.Client{Timeout: 20 * time.Second}})
	bg := context.Background() // each call is bounded by the HTTP client's timeout
	testharness.WaitFor(t, time.Minute, "the root at "+api.Address(), func() (bool, string) {
		err := api.Health(bg)
		return err == nil, fmt.Sprint(err)
	})
	password := p.copyOut(t, ids[rootTarget], rootData+"/admin-password")
	if _, err := api.Login(bg, "Admin", password); err != nil {
		t.Fatalf("log in with the admin-password of the root's volume: %v", err)
	}

	// The cluster: joined the root with the token of the shared volume,
	// advertising the address that was set.
	clusterName := interpolate(t, "cluster", cluster.Environment["THICKET_CLUSTER_NAME"])
	var joined rest.Cluster
	testharness.WaitFor(t, 90*time.Second, "cluster "+clusterName+" active at the root", func() (bool, string) {
		cls, err := api.ActiveClusters(bg)
		if err != nil {
			return false, err.Error()
		}
		for _, cl := range cls {
			if cl.ClusterName == clusterName && cl.Active {
				joined = cl
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", cls)
	})
	t.Logf("cluster %s active at the root, advertising %s (%s)", clusterName, joined.IP, time.Since(start).Round(time.Second))
	if want := interpolate(t, "cluster", cluster.Environment["THICKET_ADVERTISE_ADDRESS"]); joined.IP != want {
		t.Errorf("the cluster advertises %q, want compose's default %q", joined.IP, want)
	}

	// The root image serves the binaries it holds for /install/worker.sh.
	node := filepath.Join(built.bin.Dir, "thicket-node")
	var sum string
	r, err := api.Raw(bg, http.MethodGet, "/download/thicket-node-linux-"+runtime.GOARCH+".sha256", nil)
	if err == nil {
		sum = string(r.Body)
	}
	if want := sha256Hex(t, node); err != nil || !strings.HasPrefix(sum, want+" ") {
		t.Errorf("GET /download/thicket-node-linux-%s.sha256: %q %v; want the checksum of the binary in the image, %s", runtime.GOARCH, sum, err, want)
	}

	// The worker, outside compose: the node join token from the cluster's
	// volume, the cluster's node API through the published port.
	nodeToken := p.copyOut(t, ids[clusterTarget], setting(t, clusterTarget, cluster, help[clusterTarget], "data-dir")+"/node-join-token")
	reg, err := testimage.StartRegistry(workerBridgeAddr + ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	image, err := reg.PushTestApp(ctx, "compose/testapp", "v1")
	if err != nil {
		t.Fatal(err)
	}
	testappBinary, _ = testimage.Binary(ctx) // built by the push; TestMain removes it
	ctrNS := "thicket-compose-node-" + id
	t.Cleanup(func() { testharness.CleanContainerd(context.Background(), ctrNS) })
	nodeName := "compose-" + id
	tokenFile := filepath.Join(dir, "node-join-token")
	if err := os.WriteFile(tokenFile, []byte(nodeToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, "thicket-node", filepath.Join(dir, "node.log"), "ip", "netns", "exec", workerNS, node,
		"--cluster-url", fmt.Sprintf("https://%s:%d", workerBridgeAddr, clusterPort), "--token-file", tokenFile,
		"--name", nodeName, "--address", workerAddr, "--data-dir", filepath.Join(dir, "node"),
		"--namespace", ctrNS, "--insecure-registry", reg.Host(), "--net-socket", "none", "--netns", "/run/netns/"+workerNS,
		"--cpu-millis", "2000", "--memory-mb", "1024")
	testharness.WaitFor(t, 90*time.Second, "the worker active in cluster "+clusterName, func() (bool, string) {
		cls, err := api.ActiveClusters(bg)
		if err != nil {
			return false, err.Error()
		}
		for _, cl := range cls {
			if cl.ClusterName == clusterName && cl.ActiveNodes == 1 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", cls)
	})

	// A service on it, RUNNING at the root and serving.
	body := map[string]any{"sla_version": "v2.0", "customerID": "Admin", "applications": []any{map[string]any{
		"application_name": "compose", "application_namespace": "compose", "application_desc": "TestComposeRun",
		"microservices": []any{map[string]any{"microservice_name": "web", "microservice_namespace": "compose",
			"virtualization": "container", "code": image, "memory": 64, "vcpus": 1, "port": "8080:8080"}},
	}}}
	apps, err := api.CreateApplications(bg, body)
	if err != nil || len(apps) != 1 || len(apps[0].Microservices) != 1 {
		t.Fatalf("POST /api/application/: %v %+v", err, apps)
	}
	svc := apps[0].Microservices[0]
	if _, err := api.AddInstance(bg, svc); err != nil {
		t.Fatal(err)
	}
	var in rest.Instance
	testharness.WaitFor(t, 2*time.Minute, "instance 0 RUNNING", func() (bool, string) {
		s, err := api.Service(bg, svc)
		if err != nil || len(s.InstanceList) == 0 {
			return false, fmt.Sprint(err)
		}
		in = s.InstanceList[0]
		return in.Status == wire.StatusRunning, in.Status + " " + in.StatusDetail
	})
	t.Logf("instance RUNNING on %s at %s:%d (%s)", in.NodeName, in.HostIP, in.HostPort, time.Since(start).Round(time.Second))
	if in.NodeName != nodeName {
		t.Errorf("instance on node %q, want %s", in.NodeName, nodeName)
	}
	if got, err := httpText(fmt.Sprintf("http://%s:%d/", in.HostIP, in.HostPort)); err != nil || !strings.Contains(got, "hello from") {
		t.Errorf("GET the instance at %s:%d: %q %v", in.HostIP, in.HostPort, got, err)
	}

	// Down: nothing of the project is left, and the ports are free again.
	if out, err := p.run(2*time.Minute, "down", "-v", "--timeout", "5"); err != nil {
		t.Fatalf("compose down -v: %v\n%s", err, out)
	}
	label := "label=com.docker.compose.project=" + p.name
	for _, kind := range []string{"container", "network", "volume"} {
		args := []string{kind, "ls", "-q", "--filter", label}
		if kind == "container" {
			args = append(args, "--all")
		}
		if left := strings.Fields(p.docker(t, args...)); len(left) != 0 {
			t.Errorf("after down -v: %ss left: %v", kind, left)
		}
	}
	if out, err := exec.Command("ip", "link", "show", p.netBridge).CombinedOutput(); err == nil {
		t.Errorf("after down -v: the compose network's bridge is left: %s", out)
	}
	for what, port := range ports {
		if l, err := net.Listen("tcp", ":"+strconv.Itoa(port)); err != nil {
			t.Errorf("after down -v: port %d (%s) still taken: %v", port, what, err)
		} else {
			l.Close()
		}
	}
}

// tools are the commands the test drives.
type tools struct {
	dockerd, docker string
	compose         []string // docker-compose, or docker compose
}

// composeTools finds dockerd, the docker client and compose: Debian's
// docker.io and docker-compose (1.29), or compose v2 as a docker plugin.
func composeTools(t *testing.T) tools {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("TestComposeRun needs root (its own dockerd, a network namespace, containerd); .ci/run runs the tests as root")
	}
	found := map[string]string{}
	for _, name := range []string{"dockerd", "docker", "ctr", "ip"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s not found: install docker.io, docker-compose, containerd and iproute2 (.ci/run does): %v", name, err)
		}
		found[name] = p
	}
	tl := tools{dockerd: found["dockerd"], docker: found["docker"]}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		tl.compose = []string{p}
	} else if exec.Command(tl.docker, "compose", "version").Run() == nil {
		tl.compose = []string{tl.docker, "compose"}
	} else {
		t.Fatal("neither docker-compose nor docker compose found: install docker-compose (.ci/run does)")
	}
	if _, err := os.Stat("/run/containerd/containerd.sock"); err != nil {
		t.Fatalf("containerd is not running (.ci/run starts it): %v", err)
	}
	if _, err := os.Stat(caBundle); err != nil {
		t.Fatalf("no CA certificates for the images: install ca-certificates: %v", err)
	}
	return tl
}

func portOf(t *testing.T, listen string) string {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("listen address %q: %v", listen, err)
	}
	return port + "/tcp"
}

// prebuiltStage replaces the builder stage of deploy/docker/Dockerfile: the
// same files, from the build context's build/ directory.
const prebuiltStage = `# deploy/docker/Dockerfile with its build stage replaced by the files that
# stage makes (TestComposeRun, deploy/compose_run_test.go).
FROM scratch AS build
COPY build/ /

`

// prebuiltDockerfile returns the Dockerfile src with its first stage, the
// builder, replaced by prebuiltStage: every later stage is kept as it is.
func prebuiltDockerfile(src string) (string, error) {
	lines := strings.Split(src, "\n")
	var froms []int
	for i, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && strings.EqualFold(f[0], "FROM") {
			froms = append(froms, i)
		}
	}
	if len(froms) < 2 {
		return "", errors.New("no stage after the builder")
	}
	if f := strings.Fields(lines[froms[0]]); len(f) != 4 || !strings.EqualFold(f[2], "AS") || f[3] != buildStageName {
		return "", fmt.Errorf("the first stage is %q, not the builder (FROM ... AS %s)", lines[froms[0]], buildStageName)
	}
	return prebuiltStage + strings.Join(lines[froms[1]:], "\n"), nil
}

// readPrebuilt returns prebuiltDockerfile of deploy/docker/Dockerfile.
func readPrebuilt(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	text, err := prebuiltDockerfile(string(src))
	if err != nil {
		t.Fatalf("%s: %v", dockerfile, err)
	}
	return text
}

var (
	octalRE = regexp.MustCompile(`\\[0-7]{3}`)
	mkdirRE = regexp.MustCompile(`mkdir -p((?:\s+/\S+)+)`)
	chmodRE = regexp.MustCompile(`chmod (\d+)((?:\s+/[^\s&;]+)+)`)
)

// prebuiltContext makes a build context for prebuiltDockerfile in dir: the
// binaries of `binaries` in build/out/, the builder's directories (its
// mkdir -p and chmod) and the host's CA certificates. It fails if a later
// stage copies anything from the builder that the context lacks.
func prebuiltContext(t *testing.T, dir string) string {
	t.Helper()
	df, text := dockerfile, readPrebuilt(t)
	stages := parseDockerfile(t, df)
	build := filepath.Join(dir, "build")
	cmds, outDir, _ := builtCmds(stageNamed(stages, buildStageName))
	for _, c := range cmds {
		if b := filepath.Join(built.bin.Dir, path.Base(c)); fileExists(b) {
			copyTestFile(t, b, filepath.Join(build, outDir, path.Base(c)), 0o755)
		}
	}
	copyTestFile(t, caBundle, filepath.Join(build, caBundle), 0o644)
	for _, in := range stageNamed(stages, buildStageName).Lines {
		for _, m := range mkdirRE.FindAllStringSubmatch(in.Args, -1) {
			for _, d := range strings.Fields(m[1]) {
				if err := os.MkdirAll(filepath.Join(build, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, m := range chmodRE.FindAllStringSubmatch(in.Args, -1) {
			mode, _ := strconv.ParseUint(m[1], 8, 32)
			for _, d := range strings.Fields(m[2]) {
				// os.Chmod takes Go's mode bits: the sticky bit is not 01000.
				fm := os.FileMode(mode & 0o777)
				if mode&0o1000 != 0 {
					fm |= os.ModeSticky
				}
				if err := os.Chmod(filepath.Join(build, d), fm); err != nil {
					t.Fatalf("%s: chmod %s %s: %v", df, m[1], d, err)
				}
			}
		}
	}
	for _, st := range stages[1:] {
		for _, args := range all([]*stage{st}, "COPY") {
			if cp := parseCopy(args); cp.From == buildStageName {
				for _, s := range cp.Srcs {
					if _, err := os.Stat(filepath.Join(build, s)); err != nil {
						t.Fatalf("%s: stage %s copies %s from the builder, which the prebuilt context lacks (teach prebuiltContext): %v", df, st.Name, s, err)
					}
				}
			}
		}
	}
	writeTestFile(t, filepath.Join(dir, "Dockerfile"), text)
	return dir
}

// checkImage compares a built image's configuration with what the
// Dockerfile's target says: entrypoint, user, volumes, exposed ports.
func checkImage(t *testing.T, p *project, target, image string) {
	t.Helper()
	ch := chain(parseDockerfile(t, dockerfile), target)
	var cfg struct {
		User         string
		Entrypoint   []string
		ExposedPorts map[string]struct{}
		Volumes      map[string]struct{}
	}
	if err := json.Unmarshal([]byte(p.docker(t, "image", "inspect", "-f", "{{json .Config}}", image)), &cfg); err != nil {
		t.Fatalf("inspect %s: %v", image, err)
	}
	var expose, volumes []string
	for _, e := range all(ch, "EXPOSE") {
		expose = append(expose, strings.Fields(e)...)
	}
	for _, v := range all(ch, "VOLUME") {
		volumes = append(volumes, strings.Fields(v)...)
	}
	if cfg.User != last(ch, "USER") || !slices.Equal(cfg.Entrypoint, entrypoint(t, target, ch)) ||
		!slices.Equal(sortedKeys(cfg.ExposedPorts), sorted(expose)) || !slices.Equal(sortedKeys(cfg.Volumes), sorted(volumes)) {
		t.Errorf("image %s: user %q entrypoint %q ports %v volumes %v; the Dockerfile's target %s says %q %q %v %v",
			image, cfg.User, cfg.Entrypoint, sortedKeys(cfg.ExposedPorts), sortedKeys(cfg.Volumes),
			target, last(ch, "USER"), entrypoint(t, target, ch), expose, volumes)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// --- the test's dockerd ---

// startDockerd starts a dockerd of the test's own in dir, on the host's
// containerd (in namespace ns), that leaves the host's iptables and
// forwarding alone (published ports go through docker-proxy) and has no
// default bridge; it returns its DOCKER_HOST. It is stopped, and its state
// removed, when the test ends.
func startDockerd(t *testing.T, dockerdCmd, dir, ns string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "daemon.json") // not /etc/docker/daemon.json
	writeTestFile(t, cfg, "{}\n")
	sock := filepath.Join(dir, "docker.sock")
	// After dockerd stopped (cleanups run last-in first-out): what a dockerd
	// that had to be killed may leave.
	t.Cleanup(func() {
		testharness.CleanContainerd(context.Background(), ns)
		testharness.CleanContainerd(context.Background(), ns+"-plugins")
		out, _ := exec.Command("ip", "-o", "-4", "addr", "show").Output()
		pool := netip.MustParsePrefix(dockerPool)
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) > 3 {
				if a, err := netip.ParsePrefix(f[3]); err == nil && pool.Contains(a.Addr()) {
					exec.Command("ip", "link", "del", f[1]).Run()
				}
			}
		}
	})
	startDaemon(t, "dockerd", filepath.Join(dir, "dockerd.log"), dockerdCmd,
		"--config-file", cfg, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://"+sock, "--pidfile", filepath.Join(dir, "docker.pid"),
		"--iptables=false", "--ip-forward=false", "--bridge=none", "--userland-proxy=true",
		"--default-address-pool", "base="+dockerPool+",size=24",
		"--containerd", "/run/containerd/containerd.sock", "--containerd-namespace", ns, "--containerd-plugins-namespace", ns+"-plugins")
	client := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	testharness.WaitFor(t, time.Minute, "dockerd answering on "+sock, func() (bool, string) {
		resp, err := client.Get("http://docker/_ping")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return "unix://" + sock
}

// project runs compose and docker against the test's dockerd.
type project struct {
	dockerHost string
	dockerCmd  string // the docker client
	config     string // its DOCKER_CONFIG: not the user's
	name       string
	argv       []string // the compose command with its global flags
	env        []string // THICKET_* settings, as in .env
	netBridge  string   // the bridge of the project's network
}

// environ is this process's environment without docker, compose and
// Thicket settings, plus the test's. The classic builder, through docker-py
// rather than the docker CLI (whose BuildKit needs buildx, and pulls).
func (p *project) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") && !strings.HasPrefix(kv, "COMPOSE_") && !strings.HasPrefix(kv, "THICKET_") {
			env = append(env, kv)
		}
	}
	return append(env, append([]string{"DOCKER_HOST=" + p.dockerHost, "DOCKER_CONFIG=" + p.config,
		"DOCKER_BUILDKIT=0", "COMPOSE_DOCKER_CLI_BUILD=0"}, p.env...)...)
}

// run runs a compose command; its combined output.
func (p *project) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.argv[0], append(slices.Clone(p.argv[1:]), args...)...)
	cmd.Env = p.environ()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%v: not done within %s", err, timeout)
	}
	return string(out), err
}

func (p *project) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := p.run(time.Minute, args...)
	if err != nil {
		t.Fatalf("compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// docker runs a docker command; its standard output.
func (p *project) docker(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(p.dockerCmd, args...)
	cmd.Env = p.environ()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// copyOut reads a file of a container (docker cp, as a user does), trimmed.
func (p *project) copyOut(t *testing.T, container, file string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), path.Base(file))
	p.docker(t, "cp", container+":"+file, dst)
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// --- processes, network, cleanup ---

// startDaemon starts a long-running process, logging into logFile, and
// stops it (SIGTERM, SIGKILL after 60 s) when the test ends, with its log's
// end if the test failed.
func startDaemon(t *testing.T, name, logFile string, argv ...string) {
	t.Helper()
	p := testharness.MustStart(t, &testharness.Proc{Name: name, Args: argv, LogFile: logFile, StopTimeout: time.Minute})
	time.Sleep(100 * time.Millisecond)
	if !p.Running() {
		t.Fatalf("%s exited at start:\n%s", name, testharness.Tail(p.Output(), 4000))
	}
}

// newWorkerHost makes a network namespace on a bridge: a machine of its own
// for the worker, at workerAddr, reaching this host (and its published
// ports) at workerBridgeAddr. It returns the namespace's name.
func newWorkerHost(t *testing.T, id string) string {
	t.Helper()
	c := testharness.ComposeNetwork
	c.HostPrefix, c.VethPrefix = "thkdc"+id, "thkdcv"+id
	return testharness.MustNetwork(t, c).MustAddHost(t, 2).Netns
}

// mountedTempDir is a temporary directory that may hold mounts (dockerd's
// data and exec roots): they are unmounted before it is removed.
func mountedTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "thicket-compose-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b, _ := os.ReadFile("/proc/self/mountinfo")
		var mounts []string
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 4 {
				if mp := unescapeMount(f[4]); strings.HasPrefix(mp, dir+"/") {
					mounts = append(mounts, mp)
				}
			}
		}
		for _, mp := range slices.Backward(mounts) {
			syscall.Unmount(mp, syscall.MNT_DETACH)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	return octalRE.ReplaceAllStringFunc(s, func(m string) string {
		n, _ := strconv.ParseUint(m[1:], 8, 8)
		return string(rune(n))
	})
}

// --- small helpers ---

func httpText(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), errors.New(resp.Status)
	}
	return string(b), err
}

func sha256Hex(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func writeTestFile(t *testing.T, file, content string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyTestFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// TestPrebuiltDockerfile checks, without docker, that the Dockerfile
// TestComposeRun builds from is deploy/docker/Dockerfile but for the builder
// stage.
func TestPrebuiltDockerfile(t *testing.T) {
	df, text := dockerfile, readPrebuilt(t)
	file := filepath.Join(t.TempDir(), "Dockerfile")
	writeTestFile(t, file, text)
	orig, pre := parseDockerfile(t, df), parseDockerfile(t, file)
	if len(pre) != len(orig) || pre[0].Name != buildStageName || pre[0].From != "scratch" || !reflect.DeepEqual(pre[1:], orig[1:]) {
		t.Errorf("the prebuilt Dockerfile's stages differ from %s's beyond the builder:\n%s", df, text)
	}
	if _, err := prebuiltDockerfile("FROM scratch AS base\nFROM base AS x\n"); err == nil {
		t.Error("a Dockerfile without a builder stage first: no error")
	}
}
