package main

import (
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/node_engine/runtimes/containerd"
)

func TestUsernsRemapFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want containerd.IDRange
		err  string
	}{
		{"", containerd.IDRange{}, ""},
		{"1000000:65536", containerd.IDRange{HostID: 1000000, Size: 65536}, ""},
		{"0:65536", containerd.IDRange{}, "host's root"},
		{"1000000", containerd.IDRange{}, "want HOSTID:SIZE"},
		{"a:b", containerd.IDRange{}, "want HOSTID:SIZE"},
		{"1000000:0", containerd.IDRange{}, "size of at least 1"},
		{"4294960000:65536", containerd.IDRange{}, "below 2^32-1"},
	} {
		got, err := sandboxFlags{UsernsRemap: tc.in}.usernsRemap()
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: error %v, want one saying %q", tc.in, err, tc.err)
		}
	}
}
