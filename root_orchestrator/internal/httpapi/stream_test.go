package httpapi

import (
	"context"
	"testing"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/root_orchestrator/internal/changefeed"
)

// TestVisibleTo: a user sees their own applications, services, instances
// and events and the clusters; not another user's, nor nodes, users (their
// own account neither), join tokens or a kind the filter does not know.
// Admins see everything.
func TestVisibleTo(t *testing.T) {
	alice := visibleTo(principal{Username: "alice", Role: api.RoleUser})
	if visibleTo(principal{Username: "root", Role: api.RoleAdmin}) != nil {
		t.Fatal("an admin's stream is filtered")
	}
	tests := []struct {
		c    changefeed.Change
		want bool
	}{
		{changefeed.Change{Kind: changefeed.KindApplication, ID: "a", Owner: "alice"}, true},
		{changefeed.Change{Kind: changefeed.KindService, ID: "s", Owner: "alice"}, true},
		{changefeed.Change{Kind: changefeed.KindInstance, ID: "s.0", Owner: "alice"}, true},
		{changefeed.Change{Kind: changefeed.KindEvent, ID: "s.0", Owner: "alice"}, true},
		{changefeed.Change{Kind: changefeed.KindCluster, ID: "c"}, true},
		{changefeed.Change{Kind: changefeed.KindApplication, ID: "b", Owner: "bob"}, false},
		{changefeed.Change{Kind: changefeed.KindEvent, ID: "t.0", Owner: "bob"}, false},
		{changefeed.Change{Kind: changefeed.KindNode, ID: "c/n"}, false},
		{changefeed.Change{Kind: changefeed.KindUser, ID: "alice"}, false},
		{changefeed.Change{Kind: changefeed.KindUser, ID: "alice", Owner: "alice"}, false},
		{changefeed.Change{Kind: changefeed.KindJoinToken, ID: "0123abcd"}, false},
		{changefeed.Change{Kind: "something new", ID: "x", Owner: "alice"}, false},
	}
	for _, tt := range tests {
		if got := alice(tt.c); got != tt.want {
			t.Errorf("alice sees %+v: %v, want %v", tt.c, got, tt.want)
		}
	}
}

// TestStreamsEnd: ending a user's streams ends all of theirs, or those of
// one session; others go on; a user holds at most MaxStreamsPerUser.
func TestStreamsEnd(t *testing.T) {
	var st streams
	st.init()
	open := func(user, family string) (*openStream, context.Context) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		o := st.take(user, family, cancel)
		if o == nil {
			t.Fatalf("%s's stream refused", user)
		}
		return o, ctx
	}
	_, a1 := open("alice", "f1")
	_, a2 := open("alice", "f2")
	bo, b1 := open("bob", "f3")
	if n := st.end("alice", "f1"); n != 1 || a1.Err() == nil || a2.Err() != nil {
		t.Fatalf("end alice's f1: %d ended, f1 %v, f2 %v", n, a1.Err(), a2.Err())
	}
	if n := st.end("alice", ""); n != 2 || a2.Err() == nil || b1.Err() != nil {
		t.Fatalf("end alice's: %d ended (f1 is still registered), f2 %v, bob %v", n, a2.Err(), b1.Err())
	}
	st.release(bo)
	if n := st.end("bob", ""); n != 0 || b1.Err() != nil {
		t.Fatalf("a released stream was ended: %d", n)
	}
	for range MaxStreamsPerUser - 2 {
		open("alice", "f4")
	}
	if st.take("alice", "f4", func() {}) != nil {
		t.Fatal("alice holds more than MaxStreamsPerUser streams")
	}
}
