package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/pki"
	"github.com/thicket-edge/thicket/internal/testharness"
)

// TestNodeTokens: node join tokens the root issues for a cluster, against
// a real root and cluster. The root prints them with the pin of the
// cluster's CA (which the cluster told it); a real thicket-node joins with
// a single-use token, and the cluster refuses a second use of it (the root
// then lists it spent); an expired token, a token scoped to another name
// and a revoked token (within 5 s of the revoke) are refused with their
// reasons; the cluster's own bootstrap token still works.
func TestNodeTokens(t *testing.T) {
	s := newSystem(t)
	c := s.addCluster("tok", "")
	hc := c.client(t)
	register := func(token, name string) (int, string) {
		t.Helper()
		body, _ := json.Marshal(wire.NodeRegisterRequest{Version: wire.Version, Name: name, Arch: "amd64",
			Capacity: wire.Resources{MilliCPU: 1000, MemoryMB: 256}})
		req, _ := http.NewRequest(http.MethodPost, c.nodeURL+"/api/node/register", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cl := s.api.client()
	create := func(req api.NodeTokenRequest) *api.NewNodeToken {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tok, err := cl.CreateNodeToken(ctx, "tok", req)
		if err != nil {
			t.Fatalf("create node token %+v: %v", req, err)
		}
		return tok
	}
	// The cluster tells the root its pin with its syncs.
	wantPin, _, _ := pki.ParseJoinToken(c.nodeToken)
	var once *api.NewNodeToken
	testharness.WaitFor(t, 30*time.Second, "a node token with the cluster's pin", func() (bool, string) {
		once = create(api.NodeTokenRequest{SingleUse: true})
		return once.Pinned, once.Token[:10]
	})
	if pin, _, err := pki.ParseJoinToken(once.Token); err != nil || pin != wantPin {
		t.Fatalf("the root's node token carries pin %q (%v); want the cluster's %q", pin, err, wantPin)
	}
	if once.ClusterURL != c.nodeURL {
		t.Errorf("the root says the cluster is at %q; want %q", once.ClusterURL, c.nodeURL)
	}

	// A real node joins with the single-use token.
	n := s.addNode(c, "a", 151, 512, once.Token)
	s.waitNodes(map[string]int{"tok": 1})
	if code, body := register(once.Token, "second"); code != http.StatusUnauthorized || !strings.Contains(body, "spent") {
		t.Errorf("a second use of the single-use token: %d %s; want 401 spent", code, body)
	}
	testharness.WaitFor(t, 15*time.Second, "the root lists the token spent", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		toks, err := cl.NodeTokens(ctx, "tok")
		for _, x := range toks {
			if x.ID == once.ID {
				return x.State == api.TokenSpent && x.UsedBy == n.name, x.State + " " + x.UsedBy
			}
		}
		return false, "not listed " + errString(err)
	})

	scoped := create(api.NodeTokenRequest{NodeName: "only-me"})
	short := create(api.NodeTokenRequest{ExpiresIn: "2s"})
	multi := create(api.NodeTokenRequest{ExpiresIn: "never"})
	// The cluster learns new tokens by its watch: wait until it admits.
	testharness.WaitFor(t, 5*time.Second, "the cluster admits by a new token", func() (bool, string) {
		code, body := register(multi.Token, "multi-1")
		return code == http.StatusOK, body
	})
	if code, body := register(scoped.Token, "not-me"); code != http.StatusUnauthorized || !strings.Contains(body, `only a node named \"only-me\"`) {
		t.Errorf("a scoped token for another name: %d %s; want 401 naming only-me", code, body)
	}
	if code, body := register(scoped.Token, "only-me"); code != http.StatusOK {
		t.Errorf("a scoped token for its name: %d %s; want 200", code, body)
	}
	time.Sleep(time.Until(*short.ExpiresAt) + 100*time.Millisecond)
	if code, body := register(short.Token, "late"); code != http.StatusUnauthorized || !strings.Contains(body, "expired at") {
		t.Errorf("an expired token: %d %s; want 401 expired", code, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	revoked := time.Now()
	if err := cl.DeleteNodeToken(ctx, "tok", multi.ID); err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 5*time.Second, "the cluster refuses the revoked token", func() (bool, string) {
		code, body := register(multi.Token, "multi-2")
		return code == http.StatusUnauthorized && strings.Contains(body, "invalid node join token"), body
	})
	t.Logf("the revoked token was refused %s after the revoke", time.Since(revoked).Round(time.Millisecond))

	if code, body := register(c.nodeToken, "bootstrap"); code != http.StatusOK {
		t.Errorf("the cluster's own token: %d %s; want 200", code, body)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
