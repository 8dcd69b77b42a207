package state

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/thicket-edge/thicket/contract/sla"
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

// TestSetAllowFrom: a service's allow_from changes in place: the service
// table (the overlay's index) follows, the instances stay as they are, and
// the change survives a restart; an unknown service is not found.
func TestSetAllowFrom(t *testing.T) {
	mem := NewMemory()
	s := open(t, mem)
	running(t, s)
	apps, _, err := s.CreateApplications("alice", oneApp("site", microservice("web", "10.30.0.5")))
	if err != nil {
		t.Fatal(err)
	}
	web := apps[0].Services[0]
	in, _, err := s.AddInstance(web)
	if err != nil {
		t.Fatal(err)
	}
	route := func(s *Store) ([]string, []string) {
		for _, r := range s.Snapshot().ServiceTable() {
			if r.IP == "10.30.0.5" {
				return r.AllowUsers, r.AllowServices
			}
		}
		t.Fatal("no route of web")
		return nil, nil
	}
	for _, tc := range []struct {
		set   []string
		users []string
	}{
		{[]string{"bob", "carol/shop"}, []string{"bob"}},
		{[]string{"dave"}, []string{"dave"}},
		{[]string{}, nil},
		{nil, nil},
	} {
		net := s.Snapshot().NetIndex()
		svc, tk, err := s.SetAllowFrom(web, tc.set)
		if err != nil {
			t.Fatal(err)
		}
		durable(t, s, tk)
		if users, _ := route(s); !slices.Equal(users, tc.users) || !slices.Equal(s.Snapshot().Service(web).Spec.AllowFrom, svc.Spec.AllowFrom) {
			t.Errorf("set %q: route allows %q, want %q", tc.set, users, tc.users)
		}
		if s.Snapshot().NetIndex() == net {
			t.Errorf("set %q: the overlay's index did not move", tc.set)
		}
		if got := s.Snapshot().Instance(in.Key); got == nil || got.DesiredIndex != in.DesiredIndex || got.Status != in.Status {
			t.Errorf("set %q: the instance changed: %+v", tc.set, got)
		}
	}
	if _, _, err := s.SetAllowFrom(web, []string{"erin"}); err != nil {
		t.Fatal(err)
	}
	if _, tk, err := s.SetAllowFrom(web, []string{"frank", "erin/app"}); err != nil {
		t.Fatal(err)
	} else {
		durable(t, s, tk)
	}
	s2 := open(t, mem)
	if got := s2.Snapshot().Service(web).Spec.AllowFrom; !slices.Equal(got, []string{"frank", "erin/app"}) {
		t.Errorf("after a restart: %q", got)
	}
	if _, _, err := s.SetAllowFrom("nope", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown service: %v", err)
	}
}

// TestOAMUpdateChangesAllowFromInPlace: a revision whose only change is a
// component's allow_from keeps its service and instances (no replacement)
// and changes the route's rules.
func TestOAMUpdateChangesAllowFromInPlace(t *testing.T) {
	s := open(t, NewMemory())
	req := func(allow ...string) OAMRequest {
		m := microservice("web", "10.30.9.9")
		m.AllowFrom = allow
		app := &sla.Application{ApplicationName: "shop", ApplicationNamespace: "default", Microservices: []sla.Microservice{m}}
		return OAMRequest{Name: "shop", Manifest: strings.Join(allow, ","), App: app, Components: []string{"web"}, Replicas: []int{2},
			Steps: []OAMStep{{"deploy", []string{"web"}}}}
	}
	a, _, err := s.CreateOAMApplication("alice", req("bob"), "spec.components")
	if err != nil {
		t.Fatal(err)
	}
	id := a.Services[0]
	keys := func() []string {
		var out []string
		for _, in := range s.Snapshot().Instances(id) {
			out = append(out, in.Key)
		}
		return out
	}
	before := keys()
	for _, allow := range [][]string{{"carol", "bob"}, nil, {"dave"}} {
		up, _, err := s.UpdateOAMApplication("alice", req(allow...), "spec.components")
		if err != nil {
			t.Fatal(err)
		}
		if c := up.OAM.Components[0]; c.ServiceID != id || c.Replacing != "" || !slices.Equal(keys(), before) {
			t.Fatalf("allow_from %q: component %+v, instances %q (were %q)", allow, c, keys(), before)
		}
		var users []string
		for _, r := range s.Snapshot().ServiceTable() {
			if r.IP == "10.30.9.9" {
				users = r.AllowUsers
			}
		}
		if want := sorted(slices.Clone(allow)...); !slices.Equal(users, want) {
			t.Errorf("allow_from %q: route allows %q", allow, users)
		}
	}
}

// TestServiceTableIsolatedApplication: the services of an application
// isolated on its own carry the tenant "owner/application id", the owner's
// other services the owner; a user entry of allow_from also names the
// user's isolated applications, an application entry its services; an
// OAM revision that changes the isolation changes the tenants.
func TestServiceTableIsolatedApplication(t *testing.T) {
	s := open(t, NewMemory())
	isolated := oneApp("vault", microservice("db", "10.30.0.10"))
	isolated.Applications[0].Isolation = sla.IsolationApplication
	apps, _, err := s.CreateApplications("alice", isolated)
	if err != nil {
		t.Fatal(err)
	}
	vault := apps[0]
	plain := oneApp("site", microservice("web", "10.30.0.11"))
	plain.Applications[0].Isolation = sla.IsolationUser
	if _, _, err := s.CreateApplications("alice", plain); err != nil {
		t.Fatal(err)
	}
	open1 := microservice("api", "10.30.0.12")
	open1.AllowFrom = []string{"alice"}
	open2 := microservice("api2", "10.30.0.13")
	open2.AllowFrom = []string{"alice/vault"}
	if _, _, err := s.CreateApplications("bob", oneApp("shop", open1, open2)); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		tenant    string
		users, id []string
	}{
		"10.30.0.10": {"alice/" + vault.ID, nil, nil},
		"10.30.0.11": {"alice", nil, nil},
		"10.30.0.12": {"bob", []string{"alice", "alice/" + vault.ID}, nil},
		"10.30.0.13": {"bob", nil, []string{vault.Services[0]}},
	}
	check := func(want map[string]struct {
		tenant    string
		users, id []string
	}) {
		t.Helper()
		for _, r := range s.Snapshot().ServiceTable() {
			w, ok := want[r.IP]
			if !ok {
				continue
			}
			if r.Tenant != w.tenant || !slices.Equal(r.AllowUsers, w.users) || !slices.Equal(r.AllowServices, w.id) {
				t.Errorf("route %s: tenant %q users %q services %q; want %q %q %q", r.IP, r.Tenant, r.AllowUsers, r.AllowServices, w.tenant, w.users, w.id)
			}
		}
	}
	check(want)
	if a := s.Snapshot().App(vault.ID); a.Isolation != sla.IsolationApplication {
		t.Errorf("stored isolation %q", a.Isolation)
	}

	// OAM: isolated from the start, then not.
	req := func(iso string) OAMRequest {
		app := &sla.Application{ApplicationName: "oam", ApplicationNamespace: "default", Isolation: iso,
			Microservices: []sla.Microservice{microservice("w", "10.30.0.14")}}
		return OAMRequest{Name: "oam", Manifest: iso, App: app, Components: []string{"w"}, Replicas: []int{1},
			Steps: []OAMStep{{"deploy", []string{"w"}}}}
	}
	oa, _, err := s.CreateOAMApplication("carol", req(sla.IsolationApplication), "spec.components")
	if err != nil {
		t.Fatal(err)
	}
	type w = struct {
		tenant    string
		users, id []string
	}
	check(map[string]w{"10.30.0.14": {"carol/" + oa.ID, nil, nil}})
	net := s.Snapshot().NetIndex()
	if _, _, err := s.UpdateOAMApplication("carol", req(""), "spec.components"); err != nil {
		t.Fatal(err)
	}
	check(map[string]w{"10.30.0.14": {"carol", nil, nil}})
	if s.Snapshot().NetIndex() == net {
		t.Error("a revision that changed the isolation did not move the overlay's index")
	}
}
