package state

import (
	"slices"
	"testing"

	"github.com/thicket-edge/thicket/contract/wire"
)

// TestFeed: every write tells the feed what it changed, with the owner of
// users' objects, and marks as usage what only changes in memory (a
// cluster's last seen time, a node's usage).
func TestFeed(t *testing.T) {
	s := open(t, NewMemory())
	f := s.Feed()
	since := func(after uint64) ([]string, uint64) {
		cs, seq, _, complete := f.Since(after)
		if !complete {
			t.Fatalf("Since(%d) incomplete", after)
		}
		var out []string
		for _, c := range cs {
			s := c.Kind + " " + c.Owner
			if c.Usage {
				s += " usage"
			}
			out = append(out, s)
		}
		slices.Sort(out)
		return slices.Compact(out), seq
	}

	apps, _, err := s.CreateApplications("alice", oneApp("a", microservice("web", "")))
	if err != nil {
		t.Fatal(err)
	}
	got, seq := since(0)
	if want := []string{"application alice", "service alice"}; !slices.Equal(got, want) {
		t.Fatalf("after creating an application: %v, want %v", got, want)
	}
	if _, _, err := s.AddInstance(apps[0].Services[0]); err != nil {
		t.Fatal(err)
	}
	got, seq = since(seq)
	if !slices.Contains(got, "instance alice") {
		t.Fatalf("after adding an instance: %v, want an instance of alice", got)
	}
	id := cluster(t, s, "c1", node("n1", 4096, 10))
	seq, _, _ = f.Current()
	if _, _, err := s.ApplyReport(id, Report{Nodes: []wire.NodeInfo{node("n1", 4096, 55)}}); err != nil {
		t.Fatal(err)
	}
	got, seq = since(seq)
	if want := []string{"cluster  usage", "node  usage"}; !slices.Equal(got, want) {
		t.Fatalf("after a report of usage: %v, want %v", got, want)
	}
	if _, err := s.DeleteApplication(apps[0].ID); err != nil {
		t.Fatal(err)
	}
	got, _ = since(seq)
	if want := []string{"application alice", "instance alice", "service alice"}; !slices.Equal(got, want) {
		t.Fatalf("after deleting the application: %v, want %v", got, want)
	}
}
