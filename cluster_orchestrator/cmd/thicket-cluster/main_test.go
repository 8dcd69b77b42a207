package main

import (
	"strings"
	"testing"
	"time"
)

// TestCheck: numbers out of their range are refused with a message that
// names the flag.
func TestCheck(t *testing.T) {
	ok := cli{SubnetBits: 24, DrainTimeout: 2 * time.Minute}
	tests := []struct {
		name string
		edit func(*cli)
		want string // "" : accepted
	}{
		{"defaults", func(*cli) {}, ""},
		{"short drain timeout", func(c *cli) { c.DrainTimeout = time.Second }, ""},
		{"zero drain timeout", func(c *cli) { c.DrainTimeout = 0 }, "--drain-timeout must be a positive duration (e.g. 2m, 30s), not 0s"},
		{"negative drain timeout", func(c *cli) { c.DrainTimeout = -time.Minute }, "--drain-timeout must be a positive duration (e.g. 2m, 30s), not -1m0s"},
		{"subnet too large", func(c *cli) { c.SubnetBits = 30 }, "--node-subnet-bits must be between 16 and 29, not 30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.check()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("check() = %v, want %q", err, tt.want)
			}
		})
	}
}
