package state

import (
	"slices"
	"testing"
)

// TestServiceTableTenancy: every route carries its owner, and allow_from
// resolves to users and to the ids of the services an application or
// service entry names, including services created after the entry.
func TestServiceTableTenancy(t *testing.T) {
	s := open(t, NewMemory())
	running(t, s)
	web := microservice("web", "10.30.0.5")
	web.AllowFrom = []string{"carol", "bob/shop/cart", "bob/shop", "bob/nothing"}
	if _, _, err := s.CreateApplications("alice", oneApp("site", web)); err != nil {
		t.Fatal(err)
	}
	apps, _, err := s.CreateApplications("bob", oneApp("shop", microservice("cart", "10.30.0.6"), microservice("pay", "10.30.0.7")))
	if err != nil {
		t.Fatal(err)
	}
	cart, pay := apps[0].Services[0], apps[0].Services[1]
	want := map[string]struct {
		tenant    string
		users, id []string
	}{
		"10.30.0.5": {"alice", []string{"carol"}, sorted(cart, pay)},
		"10.30.0.6": {"bob", nil, nil},
		"10.30.0.7": {"bob", nil, nil},
	}
	table := s.Snapshot().ServiceTable()
	if len(table) != len(want) {
		t.Fatalf("table has %d routes, want %d: %+v", len(table), len(want), table)
	}
	for _, r := range table {
		w := want[r.IP]
		if r.Tenant != w.tenant || !slices.Equal(r.AllowUsers, w.users) || !slices.Equal(r.AllowServices, w.id) {
			t.Errorf("route %s: tenant %q users %v services %v; want %q %v %v", r.IP, r.Tenant, r.AllowUsers, r.AllowServices, w.tenant, w.users, w.id)
		}
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}
