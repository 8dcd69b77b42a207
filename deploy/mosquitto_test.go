package deploy

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/internal/mqttc"
	"github.com/thicket-edge/thicket/internal/mqttc/mqttctest"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestExternalMosquittoTLS: the compose file's external Mosquitto serves
// MQTT over TLS only, and the cluster gets its CA. Statically: its only
// published port is 8883, every listener of deploy/mosquitto/mosquitto.conf
// has a certificate and key, the cluster reads THICKET_MQTT_CA_FILE from
// the mounted certificates, and nothing suggests a plain tcp:// broker
// without THICKET_INSECURE_PLAINTEXT. For real: make-certs.sh makes the
// certificates with openssl, a real Mosquitto runs the file (its container
// paths moved to a temp dir), an MQTT client trusting ca.crt connects, and
// one trusting another CA is refused.
func TestExternalMosquittoTLS(t *testing.T) {
	c := loadCompose(t)
	mosq, cluster := c.Services["mosquitto"], c.Services[clusterTarget]
	if !slices.Equal(mosq.Ports, []string{"8883:8883/tcp"}) {
		t.Errorf("mosquitto publishes %v; want only 8883:8883/tcp (MQTT over TLS)", mosq.Ports)
	}
	if !slices.Contains(mosq.Volumes, "./deploy/mosquitto/certs:/mosquitto/certs:ro") {
		t.Errorf("mosquitto does not mount deploy/mosquitto/certs read-only: %v", mosq.Volumes)
	}
	if _, ok := cluster.Environment["THICKET_MQTT_CA_FILE"]; !ok || !slices.Contains(cluster.Volumes, "./deploy/mosquitto/certs:/run/thicket-mqtt:ro") {
		t.Errorf("the cluster gets no broker CA: THICKET_MQTT_CA_FILE in %v, volumes %v", sortedKeys(cluster.Environment), cluster.Volumes)
	}
	for _, f := range []string{"docker-compose.yml", "README.md"} {
		b, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "THICKET_MQTT_URL=tcp://") {
				t.Errorf("%s suggests a plain broker: %q", f, strings.TrimSpace(l))
			}
		}
	}
	conf, err := os.ReadFile(filepath.Join(repo, "deploy/mosquitto/mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	listeners := regexp.MustCompile(`(?m)^listener\s+(\d+)`).FindAllStringSubmatch(string(conf), -1)
	if len(listeners) != 1 || listeners[0][1] != "8883" {
		t.Fatalf("mosquitto.conf listeners %v; want one, on 8883", listeners)
	}
	for _, k := range []string{"cafile", "certfile", "keyfile"} {
		if !regexp.MustCompile(`(?m)^` + k + `\s+/mosquitto/certs/`).Match(conf) {
			t.Errorf("mosquitto.conf has no %s in /mosquitto/certs", k)
		}
	}

	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	cmd := exec.Command("sh", filepath.Join(repo, "deploy/mosquitto/make-certs.sh"), "127.0.0.1", "broker.example")
	cmd.Env = append(os.Environ(), "CERTS_DIR="+certs)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make-certs.sh: %v\n%s", err, out)
	}
	port := testharness.FreePort(t)
	body := strings.ReplaceAll(string(conf), "/mosquitto/certs/", certs+"/")
	body = strings.ReplaceAll(body, "/mosquitto/data/", filepath.Join(dir, "data")+"/")
	body = strings.Replace(body, "listener 8883", "listener "+strconv.Itoa(port)+" 127.0.0.1", 1)
	if os.Geteuid() == 0 {
		body += "user root\n" // read the test's temp dir
	}
	file := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := mqttctest.MosquittoBinary()
	if bin == "" {
		t.Fatal("mosquitto not found: apt-get install -y mosquitto")
	}
	p := testharness.MustStart(t, &testharness.Proc{Name: "mosquitto", Args: []string{bin, "-c", file}})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	testharness.WaitFor(t, 10*time.Second, "mosquitto listening", func() (bool, string) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil, p.Output()
	})
	caPEM, err := os.ReadFile(filepath.Join(certs, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := pki.CAClient(caPEM, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := pki.CAClient(other.PEM, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := mqttc.Connect(ctx, mqttc.Options{URL: "mqtts://" + addr, TLS: good, ClientID: "compose-test"})
	if err != nil {
		t.Fatalf("connect with the broker's CA: %v\n%s", err, p.Output())
	}
	cl.Close()
	bctx, bcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer bcancel()
	if cl, err := mqttc.Connect(bctx, mqttc.Options{URL: "mqtts://" + addr, TLS: bad, ClientID: "compose-test-bad"}); err == nil {
		cl.Close()
		t.Error("a client trusting another CA connected")
	}
}
