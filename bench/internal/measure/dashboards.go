package measure

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/bench/internal/procstat"
	"github.com/thicket-edge/thicket/bench/internal/report"
	"github.com/thicket-edge/thicket/bench/internal/rootapi"
)

// Dashboards' budget (docs/targets.md): the root's CPU with 50 open
// dashboards and a change every second.
const (
	dashboardCount     = 50
	dashboardCPUBudget = 5.0 // % of a core
	dashboardUsers     = 10  // the streams per user are bounded (8)
)

// dashboardPage is what the applications page fetches at each refresh
// (dashboard/web/js/pages/apps.js).
var dashboardPage = []string{"/api/applications/", "/api/oam/componentdefinitions", "/api/quota"}

// dashboardMode is how the simulated dashboards follow the root.
type dashboardMode int

const (
	polling dashboardMode = iota // the old way: every page refetched every 2 s
	live                         // the stream, a refresh per relevant batch, a 30 s safety poll
)

// Dashboards measures the root's CPU with 50 open dashboards on the
// applications page (issue 23, item 7): Go clients doing what the page does,
// either polling every 2 s (the anchor) or following the live stream, while
// an application changes every second.
func Dashboards(ctx context.Context, e *Env) (out Outcome) {
	window, settle := 30*time.Second, 5*time.Second
	if e.Short {
		window, settle = 10*time.Second, 2*time.Second
	}
	s := &out.Section
	s.Title = "12. Live dashboards: root CPU with 50 open dashboards"
	s.Method = []string{fmt.Sprintf("A fresh root (embedded store), %d users with 2 applications of 2 services each; %d simulated dashboards "+
		"(%d per user, over one shared HTTP client with keep-alive connections), all on the applications page, whose refresh is %d GETs (%v). "+
		"`polling`: each refreshes every 2 s (the dashboard before the live stream). `live`: each holds `GET /api/events/stream` open "+
		"(`api.Client.Watch`) and refreshes when a batch names an application, service or instance (or says reset), one refresh "+
		"at a time and at least 2 s apart (as the page does), plus a poll every 30 s. Meanwhile one instance is added to or removed from a service every second, in turn "+
		"of each user (so a change reaches the %d dashboards of its owner), or, in `live, all see all`, by users who are admins "+
		"(every dashboard sees every change: the worst case for the stream). After %s of settling, the root's CPU time "+
		"(`/proc/<pid>/stat`) is sampled every second for %s; requests are counted by the clients.",
		dashboardUsers, dashboardCount, dashboardCount/dashboardUsers, len(dashboardPage), dashboardPage, dashboardCount/dashboardUsers, settle, window)}
	target := report.Target{What: "root CPU with 50 open dashboards, a change every second", Anchor: "the same dashboards polling every 2 s",
		Target: fmt.Sprintf("≤ %.0f %% of a core", dashboardCPUBudget), Verdict: report.NotMeasured}
	defer func() { out.Targets = append(out.Targets, target) }()

	r, err := e.Sys.StartRoot(ctx)
	if err != nil {
		s.Err = fmt.Errorf("start root: %w", err)
		return
	}
	defer r.Proc.Stop()
	table := report.Table{Header: []string{"dashboards", "changes seen by", "root CPU (window)", "root CPU p95 (1 s)", "requests/s", "page refreshes/s"}}
	defer func() { s.Tables = append(s.Tables, table) }()
	var liveCPU, pollCPU float64
	for _, sc := range []struct {
		name  string
		mode  dashboardMode
		admin bool
	}{
		{"polling every 2 s", polling, false},
		{"live", live, false},
		{"live, all see all", live, true},
	} {
		res, err := e.dashboards(ctx, r.API, sc.mode, sc.admin, settle, window, r.Proc.PID())
		if err != nil {
			s.Err = fmt.Errorf("%s: %w", sc.name, err)
			return
		}
		seen := fmt.Sprintf("their owner's %d", dashboardCount/dashboardUsers)
		if sc.admin {
			seen = fmt.Sprintf("all %d", dashboardCount)
		}
		table.Rows = append(table.Rows, []string{sc.name, seen, report.Pct(res.cpu.TotalCPUPercent), report.Pct(res.cpu.CPUPercent.P95()),
			fmt.Sprintf("%.1f", res.requests), fmt.Sprintf("%.1f", res.refreshes)})
		switch {
		case sc.mode == polling:
			pollCPU = res.cpu.TotalCPUPercent
		case !sc.admin:
			liveCPU = res.cpu.TotalCPUPercent
		}
	}
	target.Measured = fmt.Sprintf("%s of a core (polling: %s)", report.Pct(liveCPU), report.Pct(pollCPU))
	target.Verdict = report.Verdict(liveCPU <= dashboardCPUBudget)
	s.Notes = []string{"A change costs each dashboard that sees it one page refresh (3 GETs); the stream coalesces a burst into one batch per 250 ms, " +
		"and a page refreshes at most every 2 s: a page that sees a change every second (the `all see all` row, the worst case) costs " +
		"about what polling did, plus its stream. An added instance is two changes (added, then judged by the placement: no cluster here)."}
	return
}

type dashboardResult struct {
	cpu                 procstat.Usage
	requests, refreshes float64 // per second over the window
}

// dashboards runs one scenario on a fresh set of users and applications.
func (e *Env) dashboards(ctx context.Context, root *rootapi.Client, mode dashboardMode, admin bool, settle, window time.Duration, pid int) (dashboardResult, error) {
	var res dashboardResult
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	role, tag := api.RoleUser, fmt.Sprintf("d%d", time.Now().UnixNano()%1e6)
	if admin {
		role = api.RoleAdmin
	}
	type user struct {
		token string
		svcs  []string
	}
	users := make([]user, dashboardUsers)
	for i := range users {
		name, pw := fmt.Sprintf("%s-u%02d", tag, i), fmt.Sprintf("bench-%s-%02d-secret", tag, i)
		if _, err := root.CreateUser(ctx, api.NewUser{Username: name, Password: pw, Role: role}); err != nil {
			return res, fmt.Errorf("create user: %w", err)
		}
		sess, err := root.WithToken("").Login(ctx, name, pw)
		if err != nil {
			return res, fmt.Errorf("log in as %s: %w", name, err)
		}
		uc := &rootapi.Client{Client: root.WithToken(sess.Token), URL: root.URL}
		for a := range 2 {
			_, ids, err := uc.CreateApp(ctx, fmt.Sprintf("dash%s%02d%d", tag[1:], i, a), []rootapi.ServiceSpec{
				{Name: "web", Image: "docker.io/library/nginx:latest", MemoryMB: 16}, {Name: "db", Image: "docker.io/library/nginx:latest", MemoryMB: 16}})
			if err != nil {
				return res, err
			}
			for _, id := range ids {
				users[i].svcs = append(users[i].svcs, id)
			}
		}
		slices.Sort(users[i].svcs)
		users[i].token = sess.Token
	}

	var requests, refreshes atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	errs := make(chan error, 1)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for d := range dashboardCount {
		u := users[d%dashboardUsers]
		c := root.WithToken(u.token)
		refresh := func() {
			for _, p := range dashboardPage {
				if err := c.Do(ctx, "GET", p, nil, nil); err != nil && ctx.Err() == nil {
					fail(fmt.Errorf("GET %s: %w", p, err))
				}
				requests.Add(1)
			}
			refreshes.Add(1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			refresh()
			if mode == polling {
				tk := time.NewTicker(2 * time.Second)
				defer tk.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tk.C:
						refresh()
					}
				}
			}
			// Live: one refresh at a time, at least 2 s apart; a batch
			// during one asks for another after it.
			want := make(chan struct{}, 1)
			go func() {
				safety := time.NewTicker(30 * time.Second)
				defer safety.Stop()
				last := time.Now()
				for {
					select {
					case <-ctx.Done():
						return
					case <-want:
						sleep(ctx, time.Until(last.Add(2*time.Second)))
					case <-safety.C:
					}
					last = time.Now()
					refresh()
				}
			}()
			requests.Add(1)
			err := c.Watch(ctx, "", func(b api.ChangeBatch) error {
				if b.Reset || slices.ContainsFunc(b.Changes, func(ch api.Change) bool {
					return ch.Kind == api.ChangeApplication || ch.Kind == api.ChangeService || ch.Kind == api.ChangeInstance
				}) {
					select {
					case want <- struct{}{}:
					default:
					}
				}
				return nil
			})
			if err != nil {
				fail(fmt.Errorf("watch: %w", err))
			}
		}()
	}
	// A change every second, each user's in turn.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		added := map[string][]int{}
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			u := users[i%dashboardUsers]
			svc := u.svcs[(i/dashboardUsers)%len(u.svcs)]
			c := root.WithToken(u.token)
			var err error
			if ns := added[svc]; len(ns) > 0 && i%2 == 1 {
				err = c.DeleteInstance(ctx, svc, ns[0])
				added[svc] = ns[1:]
			} else {
				var n int
				n, err = c.AddInstance(ctx, svc)
				added[svc] = append(added[svc], n)
			}
			if err != nil && ctx.Err() == nil {
				fail(fmt.Errorf("change: %w", err))
				return
			}
		}
	}()
	sleep(ctx, settle)
	r0, f0 := requests.Load(), refreshes.Load()
	u, err := procstat.Measure(ctx, []procstat.Group{{Name: "root", PIDs: []int{pid}}}, window, time.Second)
	r1, f1 := requests.Load(), refreshes.Load()
	cancel()
	if err != nil {
		return res, err
	}
	select {
	case err := <-errs:
		return res, err
	default:
	}
	res.cpu = u["root"]
	res.requests = float64(r1-r0) / window.Seconds()
	res.refreshes = float64(f1-f0) / window.Seconds()
	return res, nil
}
