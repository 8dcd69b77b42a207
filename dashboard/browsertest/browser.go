// Package browsertest drives Thicket's dashboard in Debian's headless
// Chromium (/usr/bin/chromium, or $THICKET_CHROMIUM) through chromedp, for
// tests in this module and in the end-to-end suite. A test fails on any
// JavaScript console error, uncaught exception or unhandled rejection, and on
// any error entry of the browser log other than a network one (an API
// answering 401 or 400 on purpose is a network entry).
//
// Screenshots go to the test's artifact directory (go test -artifacts keeps
// them under -outputdir), or to $THICKET_SCREENSHOTS when it is set.
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Browser is one headless Chromium with one tab on the dashboard.
type Browser struct {
	t    testing.TB
	base string // the dashboard's URL, without a trailing slash
	ctx  context.Context

	mu   sync.Mutex
	errs []string
	// netErrs are the browser's network errors: expected ones (an API
	// answering 401 on purpose) do not fail a test, but a failure shows them.
	netErrs []string
}

func chromiumPath() string {
	if p := os.Getenv("THICKET_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// New starts Chromium with a fresh profile and a viewport of
// width×height CSS pixels, for a dashboard served over plain HTTP (an
// https:// baseURL needs NewTrusting). It records console errors and
// exceptions; the test fails on any of them when it ends.
func New(t testing.TB, baseURL string, width, height int) *Browser {
	t.Helper()
	if strings.HasPrefix(baseURL, "https://") {
		t.Fatalf("browsertest.New(%s): an HTTPS root needs NewTrusting with its certificate's key (testharness Root.LeafSPKI)", baseURL)
	}
	return NewTrusting(t, baseURL, "", width, height)
}

// NewTrusting is New for a dashboard served over HTTPS with a certificate
// whose public key has the SHA-256 spki (base64, testharness
// Root.LeafSPKI): Chromium trusts exactly that key
// (--ignore-certificate-errors-spki-list), as a user who imported the
// root's CA trusts its certificates; any other certificate is refused.
func NewTrusting(t testing.TB, baseURL, spki string, width, height int) *Browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath()); err != nil {
		t.Fatalf("Chromium is needed (apt-get install -y chromium): %v", err)
	}
	profile, err := os.MkdirTemp("", "thicket-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	b := &Browser{t: t, base: strings.TrimSuffix(baseURL, "/")}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication,PasswordLeakDetection"),
		chromedp.WindowSize(width, height),
	}
	if spki != "" {
		opts = append(opts, chromedp.Flag("ignore-certificate-errors-spki-list", spki))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		os.RemoveAll(profile)
	})
	b.ctx = ctx
	// The first action starts the browser, which then lives as long as the
	// context of that call: so no timeout here.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	t.Cleanup(b.checkConsole)
	return b
}

// listen runs in the tab's message loop: record, return fast.
func (b *Browser) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			msg = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg = "exception: " + d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		msg += fmt.Sprintf(" at %s:%d", d.URL, d.LineNumber+1)
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
			msg = fmt.Sprintf("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		} else if ev.Entry.Source == cdplog.EntrySourceNetwork {
			b.mu.Lock()
			b.netErrs = append(b.netErrs, fmt.Sprintf("%s %s", ev.Entry.Text, ev.Entry.URL))
			b.mu.Unlock()
		}
	}
	if msg != "" {
		b.mu.Lock()
		b.errs = append(b.errs, msg)
		b.mu.Unlock()
	}
}

func (b *Browser) checkConsole() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errs {
		b.t.Errorf("JavaScript error in the page: %s", e)
	}
}

const step = 45 * time.Second

// Do runs actions with a time limit, failing the test with what on error.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.Fail(what, err)
	}
}

// Fail saves a screenshot and fails the test with what, err and the page.
func (b *Browser) Fail(what string, err error) {
	b.t.Helper()
	b.Screenshot("FAILED")
	b.t.Fatalf("%s: %v (%s)", what, err, b.diagnose())
}

// diagnose tells what the page is made of, to tell a page whose scripts
// did not load from one that did not render.
func (b *Browser) diagnose() string {
	diag, err := b.Eval(`({hash: location.hash, ready: document.readyState, main: document.querySelector("main")?.innerHTML.length,
		loaded: performance.getEntriesByType("resource").map((e) => e.name.replace(location.origin, "") + " " + Math.round(e.duration) + "ms " + e.responseStatus)})`)
	if err != nil {
		diag = err.Error()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprintf("page %s; network errors: [%s]", diag, strings.Join(b.netErrs, "; "))
}

// Eval evaluates a JavaScript expression and answers its JSON value.
func (b *Browser) Eval(expr string) (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		return "", err
	}
	j, _ := json.Marshal(v)
	return string(j), nil
}

// EvalInto evaluates expr and decodes its value into out.
func (b *Browser) EvalInto(expr string, out any) {
	b.t.Helper()
	s, err := b.Eval(expr)
	if err != nil {
		b.Fail("evaluate "+expr, err)
	}
	if err := json.Unmarshal([]byte(s), out); err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
}

// poll evaluates expr every 100 ms until it is truthy and answers its value
// as JSON. It calls Runtime.evaluate directly instead of chromedp's Wait*
// queries and Poll: those follow chromedp's own model of the page's frames,
// and on a loaded 2-core CI machine that model once never caught up with a
// freshly loaded document, so a wait for a login field that was on the
// screen ran into its deadline. An evaluation that fails (the document is
// being replaced) is tried again until the deadline.
func (b *Browser) poll(what, expr string) json.RawMessage {
	b.t.Helper()
	wrapped := fmt.Sprintf(`(() => { const v = (%s); return v ? {v} : false; })()`, expr)
	deadline := time.Now().Add(step)
	var last error
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](wrapped))
		cancel()
		if err == nil && string(raw) != "false" {
			var got struct{ V json.RawMessage }
			if err := json.Unmarshal(raw, &got); err != nil {
				b.t.Fatalf("wait for %s: %v", what, err)
			}
			return got.V
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last == nil {
				last = fmt.Errorf("still false after %s", step)
			}
			b.Fail("wait for "+what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitJS waits until the JavaScript expression is truthy.
func (b *Browser) WaitJS(what, expr string) {
	b.t.Helper()
	b.poll(what, expr)
}

// WaitText waits until the element matching sel contains text.
func (b *Browser) WaitText(sel, text string) {
	b.t.Helper()
	b.WaitJS(fmt.Sprintf("%q in %s", text, sel), fmt.Sprintf(
		`[...document.querySelectorAll(%q)].some((e) => e.checkVisibility() && e.textContent.includes(%q))`, sel, text))
}

// WaitGone waits until no visible element matching sel contains text.
func (b *Browser) WaitGone(sel, text string) {
	b.t.Helper()
	b.WaitJS(fmt.Sprintf("no %q in %s", text, sel), fmt.Sprintf(
		`![...document.querySelectorAll(%q)].some((e) => e.checkVisibility() && e.textContent.includes(%q))`, sel, text))
}

// Visible waits until the first element matching sel is visible.
func (b *Browser) Visible(sel string) {
	b.t.Helper()
	b.WaitJS(sel+" visible", fmt.Sprintf(`document.querySelector(%q)?.checkVisibility()`, sel))
}

// point waits until the first element matching sel is visible, scrolls it
// into view and answers the middle of its box in viewport pixels.
func (b *Browser) point(sel string) (x, y float64) {
	b.t.Helper()
	raw := b.poll(sel+" visible", fmt.Sprintf(`(() => {
		const e = document.querySelector(%q);
		if (!e || !e.checkVisibility()) return false;
		e.scrollIntoView({block: "center", inline: "center"});
		const r = e.getBoundingClientRect();
		return {x: r.left + r.width / 2, y: r.top + r.height / 2};
	})()`, sel))
	var p struct{ X, Y float64 }
	if err := json.Unmarshal(raw, &p); err != nil {
		b.t.Fatalf("position of %s: %v", sel, err)
	}
	return p.X, p.Y
}

// Click waits for an element matching sel and clicks its middle with the
// mouse, as a user does (whatever lies on top gets the click).
func (b *Browser) Click(sel string) {
	b.t.Helper()
	x, y := b.point(sel)
	b.Do("click "+sel, chromedp.MouseClickXY(x, y))
}

// TypeInto clicks an input and types text with key events.
func (b *Browser) TypeInto(sel, text string) {
	b.t.Helper()
	b.Click(sel)
	b.WaitJS(sel+" focused", fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, sel))
	b.Do("type into "+sel, chromedp.KeyEvent(text))
}

// Paste focuses a field and inserts text as a paste does (one input event).
func (b *Browser) Paste(sel, text string) {
	b.t.Helper()
	b.WaitJS(sel+" focused", fmt.Sprintf(`(() => { const e = document.querySelector(%q);
		if (!e || !e.checkVisibility()) return false; e.focus(); return document.activeElement === e; })()`, sel))
	b.Do("paste into "+sel, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: text})
		return err
	}))
}

// ChooseFile sets the files of the file input sel, as choosing them in the
// file dialog does.
func (b *Browser) ChooseFile(sel string, files ...string) {
	b.t.Helper()
	b.WaitJS(sel+" present", fmt.Sprintf(`!!document.querySelector(%q)`, sel))
	b.Do("choose a file for "+sel, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		doc, err := cdp.Call(ctx, t, dom.GetDocument, dom.GetDocumentParams{})
		if err != nil {
			return err
		}
		n, err := cdp.Call(ctx, t, dom.QuerySelector, dom.QuerySelectorParams{NodeID: doc.Root.NodeID, Selector: sel})
		if err != nil {
			return err
		}
		if n.NodeID == 0 {
			return fmt.Errorf("no element %s", sel)
		}
		_, err = cdp.Call(ctx, t, dom.SetFileInputFiles, dom.SetFileInputFilesParams{Files: files, NodeID: n.NodeID})
		return err
	}))
}

// Key sends one key (kb constants or plain characters) to the focused element.
func (b *Browser) Key(keys string) {
	b.t.Helper()
	b.Do("press key", chromedp.KeyEvent(keys))
}

// markDocument tags the current document, so that waitNewDocument can tell
// its replacement from it.
func (b *Browser) markDocument() {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	_, _ = chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.__thicketOld = true`))
}

// waitNewDocument waits until a new document replaced the marked one and
// has loaded.
func (b *Browser) waitNewDocument(what string) {
	b.t.Helper()
	b.WaitJS(what, `!window.__thicketOld && document.readyState === "complete"`)
}

// Open loads the dashboard at a hash route, as typing the address does: a
// new document, or only a new hash when the page is the dashboard already.
func (b *Browser) Open(hash string) {
	b.t.Helper()
	url := b.base + "/" + hash
	b.markDocument()
	var res *page.NavigateResult
	b.Do("open "+hash, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		r, err := cdp.Call(ctx, t, page.Navigate, page.NavigateParams{URL: url})
		res = &r
		return err
	}))
	if res.ErrorText != "" {
		b.t.Fatalf("open %s: %s", url, res.ErrorText)
	}
	if res.LoaderID == "" { // same document: only the hash changed
		b.WaitJS("address "+url, fmt.Sprintf(`location.href === %q`, url))
		return
	}
	b.waitNewDocument("page " + url + " loaded")
	b.waitBooted()
}

// booted is true once the dashboard's script rendered a page into main.
const booted = `!!document.querySelector("main > :not(noscript)")`

// waitBooted waits until the dashboard's script rendered a page. On the
// loaded 2-core CI machine a freshly started Chromium twice showed a loaded
// document (its stylesheet applied) on which the script never ran, and no
// JavaScript error; this machine never did it outside a full CI run. Then
// the page is reloaded once, as a user would, and what the first load was
// made of is logged and kept in the test's artifacts; a second such load
// fails the test.
func (b *Browser) waitBooted() {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if ok, err := b.Eval(booted); err == nil && ok == "true" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	diag := b.diagnose()
	b.t.Logf("the dashboard's script did not run after 20 s; reloading once: %s", diag)
	if dir := b.screenshotDir(); os.MkdirAll(dir, 0o755) == nil {
		name := unsafeName.ReplaceAllString(b.t.Name(), "_") + "-not-booted.txt"
		_ = os.WriteFile(filepath.Join(dir, name), []byte(diag+"\n"), 0o644)
	}
	b.Screenshot("not-booted")
	b.Reload()
}

// Reload reloads the page, as F5 does.
func (b *Browser) Reload() {
	b.t.Helper()
	b.markDocument()
	b.Do("reload", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.Reload, page.ReloadParams{})
		return err
	}))
	b.waitNewDocument("page reloaded")
	b.WaitJS("the dashboard's script ran", booted)
}

// DownloadTo lets the page download files, into dir.
func (b *Browser) DownloadTo(dir string) {
	b.t.Helper()
	b.Do("allow downloads", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
		return err
	}))
}

// Login logs in through the form and waits for the applications page.
func (b *Browser) Login(user, password string) {
	b.t.Helper()
	b.Open("#/login")
	b.TypeInto("#login-username", user)
	b.TypeInto("#login-password", password)
	b.Click(".login-form button[type=submit]")
	b.WaitJS("applications page", `location.hash === "#/apps" && !!document.querySelector("#new-app")`)
	b.WaitGone("main", "Loading applications")
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// screenshotDir is $THICKET_SCREENSHOTS or the test's artifact directory.
func (b *Browser) screenshotDir() string {
	if d := os.Getenv("THICKET_SCREENSHOTS"); d != "" {
		return d
	}
	return b.t.ArtifactDir()
}

// Screenshot saves the whole page as <TestName>[-suffix].png.
func (b *Browser) Screenshot(suffix string) string {
	b.t.Helper()
	// Let transitions (bars, flashes) settle so the picture is stable.
	time.Sleep(400 * time.Millisecond)
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot: %v", err)
		return ""
	}
	name := unsafeName.ReplaceAllString(b.t.Name(), "_")
	if suffix != "" {
		name += "-" + suffix
	}
	dir := b.screenshotDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Errorf("screenshot: %v", err)
		return ""
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Errorf("screenshot: %v", err)
		return ""
	}
	abs, _ := filepath.Abs(p)
	b.t.Logf("screenshot: %s", abs)
	return abs
}

// NoHorizontalOverflow checks that the page fits the viewport's width.
func (b *Browser) NoHorizontalOverflow(where string) {
	b.t.Helper()
	var o struct{ Scroll, Client int }
	b.EvalInto(`({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth})`, &o)
	if o.Scroll > o.Client+1 {
		b.t.Errorf("%s: page is %d px wide in a %d px viewport", where, o.Scroll, o.Client)
	}
}
