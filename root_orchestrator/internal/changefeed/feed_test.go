package changefeed

import (
	"reflect"
	"testing"
)

func ch(kind, id string) Change { return Change{Kind: kind, ID: id} }

func TestSince(t *testing.T) {
	f := New(16)
	for i := range 5 { // seq 1..5, one change each
		f.Publish(uint64(10+i), ch(KindInstance, string(rune('a'+i))))
	}
	f.Publish(20) // nothing changed: no sequence number
	tests := []struct {
		name     string
		after    uint64
		want     []string
		complete bool
	}{
		{"from the start", 0, []string{"a", "b", "c", "d", "e"}, true},
		{"middle", 3, []string{"d", "e"}, true},
		{"up to date", 5, nil, true},
		{"ahead (another run)", 9, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, seq, index, complete := f.Since(tt.after)
			var ids []string
			for _, c := range cs {
				ids = append(ids, c.ID)
			}
			if !reflect.DeepEqual(ids, tt.want) || complete != tt.complete || seq != 5 || index != 20 {
				t.Fatalf("Since(%d) = %v seq %d index %d complete %v, want %v complete %v", tt.after, ids, seq, index, complete, tt.want, tt.complete)
			}
		})
	}
}

func TestRingDropsOldest(t *testing.T) {
	f := New(16)
	for i := range 20 { // seq 1..20
		f.Publish(uint64(i+1), ch(KindService, string(rune('A'+i))))
	}
	if _, _, _, complete := f.Since(3); complete {
		t.Fatal("changes 4 was dropped, yet Since(3) says complete")
	}
	cs, _, _, complete := f.Since(4)
	if !complete || len(cs) != 16 || cs[0].ID != "E" || cs[15].ID != "T" {
		t.Fatalf("Since(4) = %v complete %v, want E..T", cs, complete)
	}
}

func TestPublishDedupes(t *testing.T) {
	f := New(16)
	f.Publish(1, Change{Kind: KindInstance, ID: "x", Usage: true}, ch(KindInstance, "x"), ch(KindInstance, "y"), Change{Kind: KindNode, ID: "n", Usage: true})
	cs, _, _, _ := f.Since(0)
	want := []Change{ch(KindInstance, "x"), ch(KindInstance, "y"), {Kind: KindNode, ID: "n", Usage: true}}
	if !reflect.DeepEqual(cs, want) {
		t.Fatalf("got %+v, want %+v", cs, want)
	}
}
