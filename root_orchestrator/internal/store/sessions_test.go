package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSessionsAndSigningKeys: a session's refresh token rotates once; a
// spent one revokes the session; expired sessions are collected. The
// signing key set starts from the earlier single key, rotates, and drops a
// retired key after keep.
func TestSessionsAndSigningKeys(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return t0 }

	if err := s.CreateSession(ctx, "f1", "alice", "j1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, "f2", "alice", "k1", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name              string
		family, spent, to string
		want              error
		active            bool
	}{
		{"first refresh", "f1", "j1", "j2", nil, true},
		{"next refresh", "f1", "j2", "j3", nil, true},
		{"spent token again", "f1", "j1", "j4", ErrRefreshReused, false},
		{"latest token of the revoked session", "f1", "j3", "j5", ErrSessionRevoked, false},
		{"unknown session", "nope", "x", "y", ErrNotFound, false},
	}
	for _, st := range steps {
		err := s.RotateSession(ctx, st.family, st.spent, st.to, t0.Add(2*time.Hour))
		if !errors.Is(err, st.want) || (st.want == nil) != (err == nil) {
			t.Errorf("%s: RotateSession = %v, want %v", st.name, err, st.want)
		}
		if active, err := s.SessionActive(ctx, st.family); err != nil || active != st.active {
			t.Errorf("%s: active = %v, %v; want %v", st.name, active, err, st.active)
		}
	}

	// f2 expires: no refresh, then collected with f1 (which expires at +2h).
	s.now = func() time.Time { return t0.Add(90 * time.Minute) }
	if err := s.RotateSession(ctx, "f2", "k1", "k2", t0.Add(3*time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Errorf("refresh of an expired session = %v", err)
	}
	if n, err := s.DeleteExpiredSessions(ctx); err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions = %d, %v; want 1 (f2)", n, err)
	}
	s.now = func() time.Time { return t0.Add(3 * time.Hour) }
	if n, err := s.DeleteExpiredSessions(ctx); err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions = %d, %v; want 1 (f1)", n, err)
	}

	// Signing keys: the single key of earlier versions becomes the legacy
	// key of the set.
	s.now = func() time.Time { return t0 }
	legacy, err := s.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keep := time.Hour
	ks, err := s.SigningKeys(ctx, keep)
	if err != nil || len(ks.Keys) != 1 || !ks.Keys[0].Legacy || !ks.Keys[0].Private().Equal(legacy) || ks.Current != ks.Keys[0].ID {
		t.Fatalf("first key set %+v, %v", ks, err)
	}
	first := ks.Current
	if ks, err = s.RotateSigningKey(ctx, keep); err != nil || len(ks.Keys) != 2 || ks.Current == first || ks.Keys[0].RetiredAt != t0 {
		t.Fatalf("after rotation %+v, %v", ks, err)
	}
	s.now = func() time.Time { return t0.Add(keep - time.Second) }
	if ks, err = s.SigningKeys(ctx, keep); err != nil || len(ks.Keys) != 2 {
		t.Errorf("retired key dropped before keep: %+v, %v", ks, err)
	}
	s.now = func() time.Time { return t0.Add(keep) }
	if ks, err = s.SigningKeys(ctx, keep); err != nil || len(ks.Keys) != 1 || ks.Keys[0].ID != ks.Current {
		t.Errorf("retired key kept after keep: %+v, %v", ks, err)
	}
	// A writer that read the set before another rotation loses.
	stale := *ks
	if _, err := s.RotateSigningKey(ctx, keep); err != nil {
		t.Fatal(err)
	}
	if err := s.replaceKeySet(ctx, stale.Current, &stale); !errors.Is(err, ErrKeySetChanged) {
		t.Errorf("write over a newer set = %v, want ErrKeySetChanged", err)
	}
}
