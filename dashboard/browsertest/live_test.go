package browsertest

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// deployNamed stores the nginx example under another application name.
func (s *stack) deployNamed(name string) {
	s.t.Helper()
	var sla map[string]any
	if err := jsonUnmarshal(nginxSLA(s.t), &sla); err != nil {
		s.t.Fatal(err)
	}
	a := sla["applications"].([]any)[0].(map[string]any)
	a["application_name"] = name
	delete(a["microservices"].([]any)[0].(map[string]any), "addresses") // its fixed service IP
	if code := s.api("POST", "/api/application/", sla, nil); code != http.StatusOK {
		s.t.Fatalf("deploy %s: %d", name, code)
	}
}

// fetches counts the page's finished requests of a path so far.
func fetches(path string) string {
	return fmt.Sprintf(`performance.getEntriesByType("resource").filter((e) => new URL(e.name).pathname.replace(/\/$/, "") === %q).length`, path)
}

// streamPath is the live stream's path.
const streamPath = "/api/events/stream"

// fetchCounter counts a page's fetches with Resource Timing.
type fetchCounter struct {
	t *testing.T
	b *Browser
}

// countFetches makes room for the page's fetches in Resource Timing's
// buffer and counts them from then on.
func countFetches(t *testing.T, b *Browser) *fetchCounter {
	t.Helper()
	if _, err := b.Eval(`(performance.setResourceTimingBufferSize(10000), true)`); err != nil {
		t.Fatal(err)
	}
	return &fetchCounter{t: t, b: b}
}

// n is how many fetches of path finished so far.
func (c *fetchCounter) n(path string) int {
	c.t.Helper()
	v, err := c.b.Eval(fetches(path))
	if err != nil {
		c.t.Fatal(err)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		c.t.Fatalf("fetch count %q: %v", v, err)
	}
	return n
}

// quiet checks that the page does not fetch path while nothing changes:
// in 5 s (two and a half of the old 2 s polls), no more often than the
// stream reconnected (a reconnection catches up with one fetch).
func (c *fetchCounter) quiet(path, when string) {
	c.t.Helper()
	time.Sleep(time.Second) // the refresh of the last change is over
	n, streams := c.n(path), c.n(streamPath)
	time.Sleep(5 * time.Second)
	allowed := c.n(streamPath) - streams
	if m := c.n(path); m-n > allowed {
		c.t.Errorf("%s: the page fetched %s %d times in 5 s with nothing changed (%d reconnections)", when, path, m-n, allowed)
	}
}

// change makes a change (act), waits until the page shows it (shown) and
// checks that this took one fetch of path (two at most).
func (c *fetchCounter) change(path, what string, act, shown func()) {
	c.t.Helper()
	before := c.n(path)
	act()
	shown()
	if n := c.n(path) - before; n < 1 || n > 2 {
		c.t.Errorf("%s: %d fetches of %s, want 1 (2 at most)", what, n, path)
	}
}

// TestLiveUpdates: the applications page follows the root's live stream: an
// application created through the API appears without the page polling
// (no list re-fetch while nothing changes, one per change), and the stream
// comes back when the root ends it as the access token expires (30 s
// here), with the refreshed token; a hidden tab is quiet (issue 23, item 7).
func TestLiveUpdates(t *testing.T) {
	s := startStack(t, "--access-ttl=30s")
	b := newBrowser(t, s, desktopW, desktopH)
	b.Login("Admin", adminPassword)
	c := countFetches(t, b)
	b.WaitJS("the live stream", `document.documentElement.dataset.live === "open"`)
	const list, stream = "/api/applications", streamPath
	count := c.n
	quiet := func(when string) { t.Helper(); c.quiet(list, when) }
	quiet("after login")

	for i, name := range []string{"liveone", "livetwo"} {
		c.change(list, "change "+strconv.Itoa(i+1), func() { s.deployNamed(name) }, func() { b.WaitText("main", name) })
		quiet("after change " + strconv.Itoa(i+1))
	}
	b.Screenshot("live")

	// A hidden tab closes the stream and does not poll; shown again, it
	// reopens the stream and refreshes.
	hide := func(hidden bool) {
		t.Helper()
		if _, err := b.Eval(fmt.Sprintf(`(Object.defineProperty(document, "hidden", {value: %t, configurable: true}),
			document.dispatchEvent(new Event("visibilitychange")), true)`, hidden)); err != nil {
			t.Fatal(err)
		}
	}
	hide(true)
	b.WaitJS("the stream closed in a hidden tab", `document.documentElement.dataset.live === "off"`)
	n := count(list)
	time.Sleep(4500 * time.Millisecond)
	if m := count(list); m != n {
		t.Errorf("a hidden tab fetched the application list %d times in 4.5 s", m-n)
	}
	hide(false)
	b.WaitJS("the live stream in a shown tab", `document.documentElement.dataset.live === "open"`)
	b.WaitJS("a refresh when shown", fmt.Sprintf("%s > %d", fetches(list), n))

	// The root ends the stream when the token it was opened with expires;
	// the page opens it again with the refreshed one and follows on.
	time.Sleep(time.Second)
	ended := count(stream)
	b.WaitJS("the stream ended at the token's expiry", fmt.Sprintf("%s > %d", fetches(stream), ended))
	b.WaitJS("the live stream again", `document.documentElement.dataset.live === "open"`)
	var tok struct{ Token string } // the test's own token expired too
	if code := s.api("POST", "/api/auth/login", map[string]string{"username": "Admin", "password": adminPassword}, &tok); code != http.StatusOK {
		t.Fatalf("API login: %d", code)
	}
	s.token = tok.Token
	s.deployNamed("livethree")
	b.WaitText("main", "livethree")
}
