package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/mqttc"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestNodeCertificates: each node gets a client certificate of its
// cluster's CA at registration (here valid 20 s) and renews it at two
// thirds of its lifetime, with nothing else disturbed.
//
//   - Node a renews at least twice while its instance runs on: same task
//     PID, same overlay IP, no restart. Its broker connection, cut after
//     its first certificate expired, comes back with the renewed one: a
//     second instance placed on it afterwards runs.
//   - Another node's certificate is refused by the broker (with a's
//     username and password) and by the node API (registering as a).
//   - An admin deletes node b: its certificate stops renewing within 5 s,
//     and the broker refuses it.
func TestNodeCertificates(t *testing.T) {
	s := newSystem(t)
	proxyIP := testharness.E2ENetwork.Prefix + ".249"
	run(t, "ip", "addr", "add", proxyIP+"/24", "dev", testharness.E2ENetwork.Bridge)
	c := s.addClusterWith(testharness.ClusterOptions{Name: "certs", Bind: bridgeAddr, Advertise: proxyIP,
		Args: []string{"--tls-san", proxyIP, "--node-cert-ttl", "20s"}})
	_, mqttProxy := proxyCluster(t, c, proxyIP)
	a := s.addOverlayNode(c, "ca", 121, 1024)
	b := s.addNode(c, "cb", 122, 1024, c.nodeToken)
	s.waitNodes(map[string]int{"certs": 2})
	firstA := identityOf(t, a)
	if id, err := pki.NodeOf(firstA.Leaf, "certs"); err != nil || id != credsOf(t, a).NodeID {
		t.Fatalf("node a's certificate names %q (%v); want its node id %s", id, err, credsOf(t, a).NodeID)
	}

	ids := s.app("certs", map[string]any{"microservice_name": "web", "memory": 16, "constraints": pin("certs", a.name)})
	s.scaleUp(ids["web"])
	before := s.api.waitInstance(ids["web"], 0, 2*time.Minute, "running with an IP", func(in api.Instance) bool {
		return running(in) && in.InstanceIP != ""
	})
	tasks := taskPIDs(t, s.ctrNS)

	t.Run("another node's certificate is refused", func(t *testing.T) {
		ca, cb := credsOf(t, a), credsOf(t, b)
		bCert := identityOf(t, b)
		// The broker, with a's username, client id and password.
		err := connectAs(t, ca, bCert)
		if err == nil {
			t.Fatal("the broker took node b's certificate for node a")
		}
		if !errors.Is(err, mqttc.ErrNotAuthorized) {
			t.Errorf("connect as a with b's certificate: %v; want not authorized", err)
		}
		if !strings.Contains(c.proc.Output(), "the certificate is node "+cb.NodeID+"'s, not node "+ca.NodeID+"'s") {
			t.Errorf("the cluster does not log the refusal:\n%s", testharness.Tail(c.proc.Output(), 2000))
		}
		// The node API: registering as a, with a's password, showing b's
		// certificate.
		code, body := nodeAPI(t, c, bCert, "/api/node/register", wire.NodeRegisterRequest{Version: wire.Version, Name: a.name,
			NodeID: ca.NodeID, Credential: ca.MQTTPassword, Capacity: wire.Resources{MilliCPU: 1000, MemoryMB: 512}})
		if code != http.StatusForbidden {
			t.Errorf("register as a with b's certificate: %d %s; want 403", code, body)
		}
	})

	t.Run("node a renews twice; its instance runs on", func(t *testing.T) {
		testharness.WaitFor(t, 90*time.Second, "two renewals", func() (bool, string) {
			return strings.Count(a.proc.Output(), "client certificate renewed") >= 2, testharness.Tail(a.proc.Output(), 1000)
		})
		now := identityOf(t, a)
		if now.Leaf.SerialNumber.Cmp(firstA.Leaf.SerialNumber) == 0 {
			t.Fatal("node a's identity file holds its first certificate")
		}
		if wait := time.Until(firstA.Leaf.NotAfter); wait > 0 {
			time.Sleep(wait + time.Second)
		}
		// Its broker connection was made with the first certificate, now
		// expired: cut, it comes back only with the renewed one.
		lost := strings.Count(a.proc.Output(), "mqtt connection lost")
		mqttProxy.redirect("")
		testharness.WaitFor(t, 20*time.Second, "node a notices the cut", func() (bool, string) {
			return strings.Count(a.proc.Output(), "mqtt connection lost") > lost, ""
		})
		s.scaleUp(ids["web"])
		s.api.waitInstance(ids["web"], 1, 2*time.Minute, "the second instance running on a", func(in api.Instance) bool {
			return running(in) && in.NodeName == a.name
		})
		in, _ := s.api.instance(ids["web"], 0)
		if !running(in) || in.InstanceIP != before.InstanceIP || in.Restarts != 0 {
			t.Errorf("instance 0 now %s at %s with %d restarts; was running at %s", in.Status, in.InstanceIP, in.Restarts, before.InstanceIP)
		}
		nowTasks := taskPIDs(t, s.ctrNS)
		for k, pid := range tasks {
			if nowTasks[k] != pid {
				t.Errorf("task %s: PID %s, was %s", k, nowTasks[k], pid)
			}
		}
		if strings.Contains(c.proc.Output(), "node lost") {
			t.Errorf("the cluster lost a node during the renewals:\n%s", testharness.Tail(c.proc.Output(), 3000))
		}
		m, err := scrape(c.nodeURL, c.dir)
		if err != nil {
			t.Fatal(err)
		}
		if n := metric(m, `thicket_cluster_node_certificates_issued_total{how="renew"}`); n < 2 {
			t.Errorf("renewals counted: %v; want at least 2", n)
		}
		if n := metric(m, `thicket_cluster_node_certificates_refused_total{where="mqtt"}`); n < 1 {
			t.Errorf("refusals counted on MQTT: %v; want at least 1", n)
		}
	})

	t.Run("a deleted node's certificate stops working within 5 s", func(t *testing.T) {
		cb := credsOf(t, b)
		bCert := identityOf(t, b)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if code, body := nodeAPI(t, c, bCert, "/api/node/certificate", renewal(t)); code != http.StatusOK {
			t.Fatalf("renewal with b's certificate before the delete: %d %s", code, body)
		}
		deleted := time.Now()
		if err := s.api.client().DeleteNode(ctx, "certs", b.name); err != nil {
			t.Fatal(err)
		}
		for {
			code, body := nodeAPI(t, c, bCert, "/api/node/certificate", renewal(t))
			if code == http.StatusForbidden {
				t.Logf("b's certificate refused %s after the delete: %s", time.Since(deleted).Round(time.Millisecond), body)
				break
			}
			if time.Since(deleted) > 5*time.Second {
				t.Fatalf("b's certificate still renews 5 s after the delete: %d %s", code, body)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err := connectAs(t, cb, bCert); err == nil {
			t.Fatal("the broker took the deleted node's certificate")
		}
	})
}

// connectAs connects to the broker as the node of creds (its username,
// client id and password), presenting cert; it closes what it connected.
func connectAs(t *testing.T, creds savedCreds, cert *tls.Certificate) error {
	t.Helper()
	tc := brokerTLS(t, creds.NodeRegisterResponse)
	tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := mqttc.Connect(ctx, mqttc.Options{URL: creds.MQTTURL, TLS: tc, ClientID: mqttc.NodeClientID(creds.NodeID),
		Username: creds.NodeID, Password: creds.MQTTPassword})
	if err == nil {
		cl.Close()
	}
	return err
}

type savedCreds struct {
	wire.NodeRegisterResponse
}

func credsOf(t *testing.T, n *node) savedCreds {
	t.Helper()
	var c savedCreds
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(n.dir, "node-credentials.json"))), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// identityOf is the node's client certificate and key, from its data dir.
func identityOf(t *testing.T, n *node) *tls.Certificate {
	t.Helper()
	file := filepath.Join(n.dir, "node-identity.pem")
	st, err := os.Stat(file)
	if err != nil {
		t.Fatalf("node %s: %v", n.name, err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", file, st.Mode().Perm())
	}
	b := []byte(readFile(t, file))
	pair, err := tls.X509KeyPair(b, b)
	if err != nil {
		t.Fatalf("node %s's identity: %v", n.name, err)
	}
	return &pair
}

func renewal(t *testing.T) wire.NodeCertificateRequest {
	t.Helper()
	_, csr, err := pki.NewCSR("x")
	if err != nil {
		t.Fatal(err)
	}
	return wire.NodeCertificateRequest{Version: wire.Version, CSRPEM: string(csr)}
}

// nodeAPI POSTs body to the cluster's node API as a node does (the join
// token, the pinned CA), presenting cert.
func nodeAPI(t *testing.T, c *cluster, cert *tls.Certificate, path string, body any) (int, string) {
	t.Helper()
	pin, secret, err := pki.ParseJoinToken(c.nodeToken)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(c.nodeURL)
	tc := pki.PinnedClient(pin, u.Hostname())
	tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, c.nodeURL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	return resp.StatusCode, out.String()
}
