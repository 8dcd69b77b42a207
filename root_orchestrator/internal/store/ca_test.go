package store

import (
	"context"
	"errors"
	"testing"
)

// TestSharedSigningKey: the first replica's key is every later one's; a
// failed create stores nothing.
func TestSharedSigningKey(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	if _, err := s.SharedSigningKey(ctx, func() ([]byte, error) { return nil, errors.New("no entropy") }); err == nil {
		t.Fatal("a failed create succeeded")
	}
	first, err := s.SharedSigningKey(ctx, func() ([]byte, error) { return []byte("key one"), nil })
	if err != nil || string(first) != "key one" {
		t.Fatalf("%q %v", first, err)
	}
	again, err := s.SharedSigningKey(ctx, func() ([]byte, error) { return []byte("key two"), nil })
	if err != nil || string(again) != "key one" {
		t.Errorf("second replica got %q %v, want the first key", again, err)
	}
}
