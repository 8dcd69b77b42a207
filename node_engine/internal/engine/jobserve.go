package engine

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"

	"github.com/thicket-edge/thicket/node_engine/internal/jobsapi"
)

// The job endpoint (package jobsapi) on the instances' gateway: the
// overlay's bridge address, the first of the node's subnet, port
// Config.JobsPort. It is served once an instance of the desired set has a
// job grant and the net manager took the node's network (the bridge has
// its address then); instances that share the node's network (no net
// manager) have no address of their own to be told apart by, and get no
// endpoint.

// gatewayOf is the instances' gateway on subnet: its first address.
func gatewayOf(subnet string) (netip.Addr, bool) {
	p, err := netip.ParsePrefix(subnet)
	if err != nil || !p.Addr().Is4() {
		return netip.Addr{}, false
	}
	return p.Masked().Addr().Next(), true
}

// jobsURL is the job endpoint's URL as instances reach it, "" when there
// is none. Caller holds mu.
func (e *Engine) jobsURL() string {
	if e.net == nil || e.cfg.JobsPort <= 0 {
		return ""
	}
	gw, ok := gatewayOf(e.subnet)
	if !ok {
		return ""
	}
	return "http://" + netip.AddrPortFrom(gw, uint16(e.cfg.JobsPort)).String() + jobsapi.Path
}

// jobsNotify wakes the job endpoint's long polls. Caller holds mu.
func (e *Engine) jobsNotify() {
	close(e.jobsChanged)
	e.jobsChanged = make(chan struct{})
}

// jobSource is the engine as the job endpoint's source.
type jobSource struct{ e *Engine }

// Jobs finds the instance at a by the address the net manager gave it.
// An address two keys claim (one detached, its successor attached, for a
// moment) answers nothing.
func (s jobSource) Jobs(a netip.Addr) (jobsapi.Document, <-chan struct{}, bool) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	found := ""
	for key, ip := range e.ips {
		if ip == a.String() {
			if found != "" {
				return jobsapi.Document{}, e.jobsChanged, false
			}
			found = key
		}
	}
	f, ok := e.jobFiles[found]
	if found == "" || !ok {
		return jobsapi.Document{}, e.jobsChanged, false
	}
	return f, e.jobsChanged, true
}

// serveJobs starts (or moves) the job endpoint to the gateway of subnet,
// once the net manager took the node's network, until ctx ends.
func (e *Engine) serveJobs(ctx context.Context, subnet string) {
	if e.net == nil || e.cfg.JobsPort <= 0 {
		return
	}
	gw, ok := gatewayOf(subnet)
	if !ok {
		return
	}
	at := netip.AddrPortFrom(gw, uint16(e.cfg.JobsPort))
	e.mu.Lock()
	ready := e.netHash != 0 && e.netErr == ""
	same := e.jobsAt == at
	e.mu.Unlock()
	if !ready || same {
		return
	}
	ln, err := net.Listen("tcp4", at.String())
	if err != nil {
		e.mu.Lock()
		said := e.jobsErr == err.Error()
		e.jobsErr = err.Error()
		e.mu.Unlock()
		if !said {
			e.log.Warn("cannot serve the instances' job endpoint on their gateway; they still have the job file", "address", at, "err", err)
		}
		return
	}
	srv := jobsapi.Server(jobsapi.New(jobSource{e}), e.log)
	e.mu.Lock()
	old := e.jobsSrv
	e.jobsSrv, e.jobsAt, e.jobsErr = srv, at, ""
	e.mu.Unlock()
	if old != nil {
		old.Close()
	}
	e.log.Info("serving the instances' job endpoint on their gateway", "url", "http://"+at.String()+jobsapi.Path)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Warn("job endpoint", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
}
