package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/sla"
	"github.com/thicket-edge/thicket/contract/wire"
)

func open(t *testing.T, be Backend) *Store {
	t.Helper()
	s, err := Open(context.Background(), be, Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// running starts the write-behind loop for the test's duration.
func running(t *testing.T, s *Store) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func durable(t *testing.T, s *Store, tk Ticket) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Durable(ctx, tk); err != nil {
		t.Fatal(err)
	}
}

func microservice(name, rrIP string) sla.Microservice {
	m := sla.Microservice{MicroserviceName: name, MicroserviceNamespace: "ns", Virtualization: "container",
		Code: "docker.io/library/nginx:latest", Memory: 100, VCPUs: 1}
	if rrIP != "" {
		m.Addresses = &sla.Addresses{RRIP: rrIP}
	}
	return m
}

func oneApp(name string, ms ...sla.Microservice) *sla.SLA {
	return &sla.SLA{Applications: []sla.Application{{ApplicationName: name, ApplicationNamespace: "ns", Microservices: ms}}}
}

// TestCreateIsAllOrNothing: an SLA whose second application clashes stores
// nothing, in memory or in the backend.
func TestCreateIsAllOrNothing(t *testing.T) {
	mem := NewMemory()
	s := open(t, mem)
	running(t, s)
	_, tk, err := s.CreateApplications("alice", oneApp("first", microservice("web", "10.30.0.5")))
	if err != nil {
		t.Fatal(err)
	}
	durable(t, s, tk)
	clash := &sla.SLA{Applications: []sla.Application{
		{ApplicationName: "second", ApplicationNamespace: "ns", Microservices: []sla.Microservice{microservice("a", "")}},
		{ApplicationName: "third", ApplicationNamespace: "ns", Microservices: []sla.Microservice{microservice("b", "10.30.0.5")}},
	}}
	_, _, err = s.CreateApplications("alice", clash)
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Field != "applications[1].microservices[0].addresses.rr_ip" {
		t.Fatalf("clashing SLA: err = %v, want a conflict on applications[1]...rr_ip", err)
	}
	sn := s.Snapshot()
	if apps := sn.Apps("alice"); len(apps) != 1 || len(sn.Services("")) != 1 {
		t.Errorf("after the refused SLA: %d applications, %d services in memory; want 1, 1", len(apps), len(sn.Services("")))
	}
	if mem.Count(KindApp) != 1 || mem.Count(KindService) != 1 || mem.Count(KindIP) != 1 {
		t.Errorf("backend holds %d apps, %d services, %d IPs; want 1 each", mem.Count(KindApp), mem.Count(KindService), mem.Count(KindIP))
	}
	if _, _, err := s.CreateApplications("alice", oneApp("first", microservice("x", ""))); !errors.As(err, &ce) {
		t.Errorf("same application name again: err = %v, want a conflict", err)
	}
	if _, _, err := s.CreateApplications("bob", oneApp("first", microservice("x", ""))); err != nil {
		t.Errorf("another owner's application of the same name: %v", err)
	}
}

// TestRestartRebuildsState: a store opened on the same backend has what the
// first one made durable, and keeps numbering and service IPs.
func TestRestartRebuildsState(t *testing.T) {
	mem := NewMemory()
	s := open(t, mem)
	running(t, s)
	apps, tk, err := s.CreateApplications("alice", oneApp("shop", microservice("web", "10.30.1.1"), microservice("db", "")))
	if err != nil {
		t.Fatal(err)
	}
	durable(t, s, tk)
	svc := apps[0].Services[0]
	for range 3 {
		_, tk, err := s.AddInstance(svc)
		if err != nil {
			t.Fatal(err)
		}
		durable(t, s, tk)
	}
	tk, err = s.DeleteInstance(svc, 1)
	if err != nil {
		t.Fatal(err)
	}
	durable(t, s, tk)

	again := open(t, mem)
	sn := again.Snapshot()
	ins := sn.Instances(svc)
	if len(ins) != 2 || ins[0].Number != 0 || ins[1].Number != 2 {
		t.Fatalf("after restart instances = %+v, want numbers 0 and 2", ins)
	}
	in, _, err := again.AddInstance(svc)
	if err != nil || in.Number != 3 {
		t.Errorf("next instance after restart = %+v, %v; want number 3", in, err)
	}
	var ce *ConflictError
	if _, _, err := again.CreateApplications("bob", oneApp("other", microservice("x", "10.30.1.1"))); !errors.As(err, &ce) {
		t.Errorf("a stored service IP was given again after restart: %v", err)
	}
}

// TestLoadDropsLeftovers: services no application lists (a batch cut by a
// crash) and what hangs on them are dropped at load, in the backend too.
func TestLoadDropsLeftovers(t *testing.T) {
	mem := NewMemory()
	now := time.Now()
	_ = mem.Write(context.Background(), []Change{
		{Kind: KindService, ID: "orphan", Object: &Service{ID: "orphan", AppID: "gone", CreatedAt: now}},
		{Kind: KindInstance, ID: "orphan.0", Object: &Instance{Key: "orphan.0", ServiceID: "orphan", Status: wire.StatusRequested}},
		{Kind: KindIP, ID: "10.30.0.9", Object: &IPReservation{IP: "10.30.0.9", ServiceID: "orphan"}},
	})
	s := open(t, mem)
	running(t, s)
	if sn := s.Snapshot(); sn.Service("orphan") != nil || sn.Instance("orphan.0") != nil {
		t.Errorf("leftovers loaded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for mem.Count(KindService)+mem.Count(KindInstance)+mem.Count(KindIP) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("leftovers still in the backend: %d services, %d instances, %d IPs",
				mem.Count(KindService), mem.Count(KindInstance), mem.Count(KindIP))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gate is a backend whose writes wait until released, to interleave writes
// with a batch in flight.
type gate struct {
	*Memory
	entered chan []Change
	release chan struct{}
}

// gated returns a running store over a gate.
func gated(t *testing.T) (*gate, *Store) {
	g := &gate{Memory: NewMemory(), entered: make(chan []Change, 1), release: make(chan struct{})}
	s := open(t, g)
	running(t, s)
	return g, s
}

// settle lets the next batch through and waits until tk is stored.
func (g *gate) settle(t *testing.T, s *Store, tk Ticket) {
	t.Helper()
	<-g.entered
	g.release <- struct{}{}
	durable(t, s, tk)
}

func (g *gate) Write(ctx context.Context, cs []Change) error {
	select {
	case g.entered <- cs:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Memory.Write(ctx, cs)
}

// TestDurableCountsTheOldestWrite: a write whose object changes again while
// another batch is in flight is not reported stored until its object is.
func TestDurableCountsTheOldestWrite(t *testing.T) {
	g, s := gated(t)
	settle := func(tk Ticket) { g.settle(t, s, tk) }
	apps, tk, err := s.CreateApplications("u", oneApp("first", microservice("m", "")))
	if err != nil {
		t.Fatal(err)
	}
	settle(tk)
	id := apps[0].ID

	_, inFlight, err := s.CreateApplications("u", oneApp("second", microservice("m", "")))
	if err != nil {
		t.Fatal(err)
	}
	<-g.entered // that batch is in flight
	// Two writes of the same application meanwhile.
	desc := func(d string) Ticket {
		_, tk, err := s.UpdateApplication(id, "", "", &d)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	first := desc("first change")
	desc("second change")
	g.release <- struct{}{} // the batch in flight lands
	durable(t, s, inFlight)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Durable(ctx, first); err == nil {
		t.Fatal("the application's first change was reported stored before any batch carried it")
	}
	<-g.entered
	g.release <- struct{}{}
	durable(t, s, first)
	if got := g.Get(KindApp, id); got == nil || got.(*Application).Description != "second change" {
		t.Errorf("stored application = %+v, want the newest version", got)
	}
	close(g.release)
}

// TestFailedWritesAreRetried: while the backend fails, writes are answered
// from memory but not acknowledged as stored; they land once it recovers.
func TestFailedWritesAreRetried(t *testing.T) {
	mem := NewMemory()
	mem.Fail(errors.New("disk full"))
	s := open(t, mem)
	running(t, s)
	_, tk, err := s.CreateApplications("u", oneApp("a", microservice("m", "")))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Snapshot().Apps("u")) != 1 {
		t.Errorf("the application is not served from memory")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := s.Durable(ctx, tk); err == nil || !errors.Is(err, mem.fail) {
		t.Errorf("Durable while the backend fails = %v, want the backend's error", err)
	}
	mem.Fail(nil)
	durable(t, s, tk)
	if mem.Count(KindApp) != 1 {
		t.Errorf("backend holds %d applications after recovery, want 1", mem.Count(KindApp))
	}
}

// TestWaitedForWritesGoFirst: what an API call waits for is written before
// background changes (cluster reports) queued earlier.
func TestWaitedForWritesGoFirst(t *testing.T) {
	g, s := gated(t)
	settle := func(tk Ticket) { g.settle(t, s, tk) }
	apps, tk, err := s.CreateApplications("u", oneApp("a", microservice("m", "")))
	if err != nil {
		t.Fatal(err)
	}
	settle(tk)
	id, _, _, tk, err := s.RegisterCluster(Registration{Name: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	settle(tk)

	_, inFlight, err := s.CreateApplications("u", oneApp("b", microservice("m", "")))
	if err != nil {
		t.Fatal(err)
	}
	<-g.entered // in flight
	var nodes []wire.NodeInfo
	for i := range 100 {
		nodes = append(nodes, wire.NodeInfo{ID: fmt.Sprintf("n%d", i), Name: fmt.Sprintf("n%d", i), Active: true})
	}
	if _, _, err := s.ApplyReport(id, Report{Full: true, Nodes: nodes}); err != nil {
		t.Fatal(err)
	}
	in, waited, err := s.AddInstance(apps[0].Services[0])
	if err != nil {
		t.Fatal(err)
	}
	g.release <- struct{}{}
	durable(t, s, inFlight)
	next := <-g.entered
	if len(next) != 1 || next[0].ID != in.Key {
		t.Errorf("the batch after the one in flight holds %d changes (%v...), want only the new instance", len(next), next[0].ID)
	}
	g.release <- struct{}{}
	durable(t, s, waited)
	close(g.release) // the reports follow
	go func() {
		for range g.entered {
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for g.Count(KindNode) != 100 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 100 reported nodes stored", g.Count(KindNode))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSpecPorts: the spec of an instance carries its service's port field
// parsed as well as written, for a service created from an SLA and for one
// loaded from a backend that stores only the field; an empty field gives no
// ports.
func TestSpecPorts(t *testing.T) {
	mem := NewMemory()
	s := open(t, mem)
	running(t, s)
	web := microservice("web", "")
	web.Port = "18080:8080; 53/UDP"
	apps, tk, err := s.CreateApplications("alice", oneApp("shop", web, microservice("db", "")))
	if err != nil {
		t.Fatal(err)
	}
	durable(t, s, tk)
	want := map[string][]wire.PortMapping{
		"web": {{HostPort: 18080, InstancePort: 8080, Protocol: wire.ProtocolTCP}, {HostPort: 53, InstancePort: 53, Protocol: wire.ProtocolUDP}},
		"db":  nil,
	}
	check := func(when string, s *Store) {
		t.Helper()
		sn := s.Snapshot()
		for _, id := range apps[0].Services {
			svc := sn.Service(id)
			spec := Spec(svc, &Instance{Key: wire.InstanceKey(id, 0), ServiceID: id})
			if !reflect.DeepEqual(spec.Ports, want[svc.Name]) || spec.Port != svc.Spec.Port {
				t.Errorf("%s: spec of %s: ports %+v, port %q; want %+v, %q", when, svc.Name, spec.Ports, spec.Port, want[svc.Name], svc.Spec.Port)
			}
		}
	}
	check("created", s)

	// A backend keeps the field, not the mappings.
	for _, id := range apps[0].Services {
		svc := *mem.Get(KindService, id).(*Service)
		svc.Spec.Ports = nil
		if err := mem.Write(context.Background(), []Change{{Kind: KindService, ID: id, Object: &svc}}); err != nil {
			t.Fatal(err)
		}
	}
	check("loaded", open(t, mem))
}
