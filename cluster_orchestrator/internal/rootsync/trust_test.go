package rootsync

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/pki"
)

// TestTrust: the link verifies the root against the pin of the join token
// (or the one saved at registration); a root of another CA is refused with
// a message naming both pins and nothing is saved; plain HTTP needs the
// development flag and a token without a pin.
func TestTrust(t *testing.T) {
	ctx := context.Background()
	_, real := newFakeRoot(t)
	_, mitm := newFakeRoot(t)
	realPin, _ := pins.Load(real.URL)
	mitmPin, _ := pins.Load(mitm.URL)
	cfg := func(url, tok string, plain bool) Config {
		return Config{RootURL: url, JoinToken: tok, Register: wire.ClusterRegisterRequest{Name: "c1"}, AllowPlaintext: plain}
	}
	plainURL := strings.Replace(real.URL, "https://", "http://", 1)
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"http without the flag", cfg(plainURL, "join-token", false), ErrPlaintextRoot},
		{"http with a pinned token", cfg(plainURL, pinned(t, real.URL, "join-token"), true), ErrPlaintextRoot},
		{"https without a pin", cfg(real.URL, "join-token", false), ErrNoPin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(ctx, tc.cfg, clusterStore(t), &fakeCluster{}, slog.New(slog.DiscardHandler)); !errors.Is(err, tc.want) {
				t.Fatalf("New = %v; want %v", err, tc.want)
			}
		})
	}
	if _, err := New(ctx, cfg(plainURL, "join-token", true), clusterStore(t), &fakeCluster{}, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("http with the flag and a token without a pin: %v", err)
	}

	t.Run("man in the middle", func(t *testing.T) {
		st := clusterStore(t)
		// The token of the real root, the address of another server.
		tok, _ := pki.JoinToken(realPin.(string), "join-token")
		l, err := New(ctx, cfg(mitm.URL, tok, false), st, &fakeCluster{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		_, err = l.once(ctx)
		if !errors.Is(err, pki.ErrPinMismatch) || !strings.Contains(err.Error(), "refused the root at "+mitm.URL) ||
			!strings.Contains(err.Error(), "expected "+realPin.(string)) || !strings.Contains(err.Error(), "presented "+mitmPin.(string)) {
			t.Fatalf("once = %v; want the root refused, naming the expected and presented pins", err)
		}
		if id, err := st.Identity(ctx); err != nil || id != nil {
			t.Errorf("identity saved with a man in the middle: %+v, %v", id, err)
		}
	})

	t.Run("the pin persists", func(t *testing.T) {
		st := clusterStore(t)
		l := newLink(t, real.URL, st, &fakeCluster{}, "join-token")
		if _, err := l.once(ctx); err != nil {
			t.Fatal(err)
		}
		if id, _ := st.Identity(ctx); id == nil || id.RootPin != realPin {
			t.Fatalf("identity %+v; want the root pin %s saved", id, realPin)
		}
		// A later start with a token without a pin verifies with the saved one.
		again, err := New(ctx, cfg(real.URL+"/", "join-token", false), st, &fakeCluster{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if again.pin != realPin {
			t.Errorf("pin %q after a restart; want the saved %s", again.pin, realPin)
		}
		if _, err := again.once(ctx); err != nil {
			t.Error(err)
		}
	})
}
