package nodetokens

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func tok(secret string, mod func(*wire.NodeToken)) wire.NodeToken {
	h := Hash(secret)
	t := wire.NodeToken{ID: h[:8], Hash: h}
	if mod != nil {
		mod(&t)
	}
	return t
}

func keeper(t *testing.T, st Store, list ...wire.NodeToken) *Keeper {
	t.Helper()
	k, err := New(context.Background(), "local", st, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	if err := k.SetTokens(context.Background(), list); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestAdmit: the cluster's own token and the root's active tokens admit;
// an unknown token, an expired one, one scoped to another name and a spent
// one do not, each with its reason; a node showing its own credential is
// admitted by a known token whatever its state, never by an unknown one.
func TestAdmit(t *testing.T) {
	past, future := t0.Add(-time.Minute), t0.Add(time.Minute)
	k := keeper(t, &Memory{},
		tok("open", nil),
		tok("later", func(x *wire.NodeToken) { x.ExpiresAt = &future }),
		tok("old", func(x *wire.NodeToken) { x.ExpiresAt = &past }),
		tok("w1only", func(x *wire.NodeToken) { x.NodeName = "w1" }),
		tok("spentatroot", func(x *wire.NodeToken) { x.SingleUse, x.UsedAt, x.UsedBy = true, &past, "w0" }),
	)
	for _, tc := range []struct {
		name, secret, node string
		holder             bool
		want               string // "" admitted, "unknown", or a part of the refusal
	}{
		{"the cluster's own", "local", "a", false, ""},
		{"a root token", "open", "a", false, ""},
		{"not expired yet", "later", "a", false, ""},
		{"expired", "old", "a", false, "expired at 2026-01-01T11:59:00Z"},
		{"scoped, its name", "w1only", "w1", false, ""},
		{"scoped, another name", "w1only", "w2", false, `only a node named "w1"`},
		{"spent at the root", "spentatroot", "a", false, "spent"},
		{"unknown", "nope", "a", false, "unknown"},
		{"empty", "", "a", false, "unknown"},
		{"holder, expired", "old", "a", true, ""},
		{"holder, spent", "spentatroot", "a", true, ""},
		{"holder, unknown", "nope", "a", true, "unknown"},
	} {
		_, err := k.Admit(context.Background(), tc.secret, tc.node, tc.holder)
		var r *Refusal
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v; want admitted", tc.name, err)
		case tc.want == "unknown" && !errors.Is(err, ErrUnknown):
			t.Errorf("%s: %v; want ErrUnknown", tc.name, err)
		case tc.want != "" && tc.want != "unknown" && (!errors.As(err, &r) || !strings.Contains(r.Reason, tc.want)):
			t.Errorf("%s: %v; want a refusal with %q", tc.name, err, tc.want)
		}
		if known := k.Known(tc.secret); known != (tc.want != "unknown") {
			t.Errorf("%s: Known = %v", tc.name, known)
		}
	}
}

// TestSingleUse: of concurrent uses of a single-use token exactly one is
// admitted; the use is recorded, so a keeper started again on the same
// store refuses it too, before the root knows; it is pending until the
// root's list shows it used; undo gives it back.
func TestSingleUse(t *testing.T) {
	st := &Memory{}
	once := tok("once", func(x *wire.NodeToken) { x.SingleUse = true })
	k := keeper(t, st, once)
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := k.Admit(context.Background(), "once", "n"+string(rune('0'+i)), false); err == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d concurrent uses admitted; want 1", ok.Load())
	}
	p := k.Pending()
	if len(p) != 1 || p[0].ID != once.ID || p[0].At != t0 {
		t.Fatalf("pending %+v; want the one use", p)
	}

	k2 := keeper(t, st, once) // the cluster restarted, the root has not heard
	if _, err := k2.Admit(context.Background(), "once", "x", false); err == nil || !strings.Contains(err.Error(), "spent") {
		t.Errorf("after a restart a second use: %v; want spent", err)
	}
	if len(k2.Pending()) != 1 {
		t.Error("after a restart the use is no longer pending")
	}
	used := once
	used.UsedAt, used.UsedBy = &t0, p[0].Node
	if err := k2.SetTokens(context.Background(), []wire.NodeToken{used}); err != nil {
		t.Fatal(err)
	}
	if len(k2.Pending()) != 0 {
		t.Error("the use is pending after the root listed it used")
	}

	again := tok("again", func(x *wire.NodeToken) { x.SingleUse = true })
	k3 := keeper(t, &Memory{}, again)
	undo, err := k3.Admit(context.Background(), "again", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	undo(context.Background())
	if _, err := k3.Admit(context.Background(), "again", "b", false); err != nil {
		t.Errorf("after undo: %v; want admitted", err)
	}
}

// TestRevoke: a token the root's list no longer holds admits no node; the
// list is stored, so a restarted keeper has the same view.
func TestRevoke(t *testing.T) {
	st := &Memory{}
	k := keeper(t, st, tok("a", nil), tok("b", nil))
	if err := k.SetTokens(context.Background(), []wire.NodeToken{tok("b", nil)}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Admit(context.Background(), "a", "n", false); !errors.Is(err, ErrUnknown) {
		t.Errorf("revoked: %v; want ErrUnknown", err)
	}
	k2, err := New(context.Background(), "local", st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Known("a") || !k2.Known("b") {
		t.Error("a restarted keeper does not have the root's last list")
	}
}
