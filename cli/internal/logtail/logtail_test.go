package logtail

import (
	"reflect"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/api"
)

func TestKeys(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	k := Keys([]api.LogLine{{Time: t0, Stream: "stdout", Text: "GET /"}, {Time: t0.Add(time.Second), Stream: "stdout", Text: "GET /"},
		{Time: t0.Add(time.Second), Stream: "stderr", Text: "GET /"}, {Text: "GET /"}})
	if k[0] == k[1] || k[1] == k[2] || k[2] == k[3] {
		t.Errorf("the same text at other times or on other streams has the same key: %q", k)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name            string
		prev, cur, want []string
	}{
		{"nothing before", nil, []string{"a", "b"}, []string{"a", "b"}},
		{"nothing new", []string{"a", "b"}, []string{"a", "b"}, []string{}},
		{"appended", []string{"a", "b"}, []string{"a", "b", "c", "d"}, []string{"c", "d"}},
		{"window moved", []string{"a", "b", "c"}, []string{"b", "c", "d"}, []string{"d"}},
		{"window moved past everything", []string{"a", "b"}, []string{"c", "d"}, []string{"c", "d"}},
		{"repeated lines", []string{"GET /", "GET /"}, []string{"GET /", "GET /", "GET /"}, []string{"GET /"}},
		{"repeated pattern", []string{"x", "y", "x", "y"}, []string{"x", "y", "x", "y", "x", "y"}, []string{"x", "y"}},
		{"log emptied (restart)", []string{"a"}, nil, nil},
	} {
		got := New(tc.prev, tc.cur)
		if len(got) != len(tc.want) || (len(got) > 0 && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("%s: New = %q, want %q", tc.name, got, tc.want)
		}
	}
}
