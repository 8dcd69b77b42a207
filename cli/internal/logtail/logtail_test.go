package logtail

import (
	"reflect"
	"testing"
)

func TestLines(t *testing.T) {
	for in, want := range map[string][]string{
		"":         nil,
		"\n":       nil,
		"a":        {"a"},
		"a\nb\n":   {"a", "b"},
		"a\n\nb":   {"a", "", "b"},
		"a\nb\n\n": {"a", "b"},
	} {
		if got := Lines(in); !reflect.DeepEqual(got, want) {
			t.Errorf("Lines(%q) = %q, want %q", in, got, want)
		}
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
