package state

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestNodeTokens: a node token is kept by its hash only, wakes its
// cluster's watch (a delta after its creation is not empty) and travels in
// the cluster's tokens; the cluster's report of a use marks it spent and
// its pin is kept; a revoke forgets it and wakes the watch again; unknown
// clusters and tokens are not found and change nothing.
func TestNodeTokens(t *testing.T) {
	s := open(t, NewMemory())
	c1 := cluster(t, s, "c1")
	c2 := cluster(t, s, "c2")

	before := s.Snapshot()
	if _, _, _, err := s.CreateNodeToken("nope", NodeTokenSpec{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("token for an unknown cluster: %v; want ErrNotFound", err)
	}
	if _, err := s.RevokeNodeToken(c1, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke an unknown token: %v; want ErrNotFound", err)
	}
	if s.Snapshot().Index() != before.Index() {
		t.Fatal("a refused call changed the state")
	}

	secret, tok, _, err := s.CreateNodeToken(c1, NodeTokenSpec{TTL: time.Hour, SingleUse: true, NodeName: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "thn_") || tok.Hash != SecretHash(secret) || tok.ID != tok.Hash[:8] {
		t.Fatalf("token %q: %+v; want its hash and id", secret, tok)
	}
	sn := s.Snapshot()
	if d := sn.DesiredFor(c1, s.Epoch(), before.Index(), s.Epoch()); d.Empty() {
		t.Error("the delta after a new token is empty: the cluster's watch would not wake")
	}
	if d := sn.DesiredFor(c2, s.Epoch(), before.Index(), s.Epoch()); !d.Empty() {
		t.Error("another cluster's watch wakes for the token")
	}
	w := WireNodeTokens(sn.Cluster(c1))
	if len(w) != 1 || w[0].Hash != tok.Hash || !w[0].SingleUse || w[0].NodeName != "w1" || w[0].ExpiresAt == nil || w[0].UsedAt != nil {
		t.Fatalf("the cluster's tokens are %+v", w)
	}
	if WireNodeTokens(sn.Cluster(c2)) != nil {
		t.Error("the token travels to another cluster")
	}
	if st := sn.Cluster(c1).NodeTokens[0].State(time.Now()); st != TokenActive {
		t.Errorf("state %s; want active", st)
	}
	if st := sn.Cluster(c1).NodeTokens[0].State(time.Now().Add(2 * time.Hour)); st != TokenExpired {
		t.Errorf("state in 2h %s; want expired", st)
	}

	// The cluster tells its pin and the use; a use of an unknown token or
	// another cluster's changes nothing.
	at := time.Now().Add(-time.Second).UTC()
	mid := s.Snapshot()
	if _, _, err := s.ApplyReport(c2, Report{NodeTokenUses: []wire.NodeTokenUse{{ID: tok.ID, Node: "x", At: at}}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ApplyReport(c1, Report{CAPin: "sha256:" + strings.Repeat("a", 64),
		NodeTokenUses: []wire.NodeTokenUse{{ID: tok.ID, Node: "w1", At: at}, {ID: "nope", Node: "w2", At: at}}}); err != nil {
		t.Fatal(err)
	}
	sn = s.Snapshot()
	got := sn.Cluster(c1)
	if got.CAPin != "sha256:"+strings.Repeat("a", 64) {
		t.Errorf("the cluster's pin is %q", got.CAPin)
	}
	if u := got.NodeTokens[0]; u.UsedAt == nil || !u.UsedAt.Equal(at) || u.UsedBy != "w1" || u.State(time.Now()) != TokenSpent {
		t.Errorf("after the use the token is %+v; want spent by w1", u)
	}
	if mid.Cluster(c1).NodeTokens[0].UsedAt != nil {
		t.Error("the report changed an earlier snapshot's token")
	}
	if d := sn.DesiredFor(c1, s.Epoch(), mid.Index(), s.Epoch()); d.Empty() {
		t.Error("the watch does not wake when the token is spent")
	}

	if _, err := s.RevokeNodeToken(c1, tok.ID); err != nil {
		t.Fatal(err)
	}
	after := s.Snapshot()
	if len(after.Cluster(c1).NodeTokens) != 0 || WireNodeTokens(after.Cluster(c1)) != nil {
		t.Errorf("after the revoke the tokens are %+v", after.Cluster(c1).NodeTokens)
	}
	if d := after.DesiredFor(c1, s.Epoch(), sn.Index(), s.Epoch()); d.Empty() {
		t.Error("the delta after a revoke is empty: the cluster would keep admitting by it")
	}
}

// TestNodeTokensBounded: a cluster holds at most wire.MaxNodeTokens tokens;
// tokens that ended long ago make room.
func TestNodeTokensBounded(t *testing.T) {
	s := open(t, NewMemory())
	c := cluster(t, s, "c1")
	for i := range wire.MaxNodeTokens {
		if _, _, _, err := s.CreateNodeToken(c, NodeTokenSpec{TTL: time.Hour}); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	if _, _, _, err := s.CreateNodeToken(c, NodeTokenSpec{}); !errors.Is(err, ErrTooManyTokens) {
		t.Fatalf("one token too many: %v; want ErrTooManyTokens", err)
	}
	s.now = func() time.Time { return time.Now().Add(time.Hour + NodeTokenKeep + time.Minute) }
	if _, _, _, err := s.CreateNodeToken(c, NodeTokenSpec{}); err != nil {
		t.Fatalf("after the others ended long ago: %v", err)
	}
	if n := len(s.Snapshot().Cluster(c).NodeTokens); n != 1 {
		t.Errorf("%d tokens; want the new one only", n)
	}
}
