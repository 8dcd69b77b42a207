// Entry point: hash router, page lifecycle and refreshes.
//
// Each page module exports mount(ctx) and returns {title, refresh, unmount}.
// refresh(signal) loads the page's data and renders what changed; the router
// calls it at once and then again when something the page shows changed, as
// the live stream says (live.js; a route's `live` lists the kinds of change
// it shows), with a slow poll (SLOW_POLL_MS) as a safety net. Without the
// stream, and on pages of things the stream does not carry (users, join
// tokens), it polls every POLL_MS while the tab is visible. Leaving a page
// aborts its requests.
import * as api from './api.js';
import { banner, describe } from './ui.js';
import * as loginPage from './pages/login.js';
import * as appsPage from './pages/apps.js';
import * as servicesPage from './pages/services.js';
import * as infraPage from './pages/infra.js';
import * as nodePage from './pages/node.js';
import * as topologyPage from './pages/topology.js';
import * as usersPage from './pages/users.js';
import * as tokensPage from './pages/tokens.js';
import * as nodeTokensPage from './pages/nodetokens.js';
import { h } from './dom.js';
import * as live from './live.js';

const POLL_MS = 2000;
const SLOW_POLL_MS = 30_000;
// A change refreshes the page after LIVE_DEBOUNCE_MS (a burst is one
// refresh), but not sooner than LIVE_GAP_MS after the previous refresh: a
// page that sees changes all the time costs no more than the old polling;
// a change of usage figures only (which move all the time) at most every
// USAGE_REFRESH_MS.
const LIVE_DEBOUNCE_MS = 150;
const LIVE_GAP_MS = 2000;
const USAGE_REFRESH_MS = 5000;

const APPS = ['application', 'service', 'instance'];
const INFRA = ['cluster', 'node', 'instance'];
const NEXT_KEY = 'thicket.next';

const routes = [
  { re: /^\/login$/, page: loginPage, open: true },
  { re: /^\/apps$/, page: appsPage, nav: 'apps', live: APPS },
  { re: /^\/apps\/([^/]+)$/, page: servicesPage, nav: 'apps', params: ['appId'], live: [...APPS, 'event', 'cluster'] },
  { re: /^\/infra$/, page: infraPage, nav: 'infra', live: INFRA },
  { re: /^\/topology$/, page: topologyPage, nav: 'infra', live: INFRA },
  { re: /^\/infra\/([^/]+)\/([^/]+)$/, page: nodePage, nav: 'infra', params: ['clusterId', 'nodeId'], live: INFRA },
  { re: /^\/users$/, page: usersPage, nav: 'users', admin: true },
  { re: /^\/tokens$/, page: tokensPage, nav: 'tokens', admin: true },
  { re: /^\/clusters\/([^/]+)\/node-tokens$/, page: nodeTokensPage, nav: 'infra', admin: true, params: ['clusterId'], live: ['cluster'] },
];

const main = document.getElementById('main');
let active = null; // {page instance, ctrl, timer, due, busy, again, live, last}
let endReason = '';
let firstRoute = true;

function match(path) {
  for (const r of routes) {
    const m = r.re.exec(path);
    if (m) {
      const params = {};
      (r.params || []).forEach((name, i) => {
        params[name] = decodeURIComponent(m[i + 1]);
      });
      return { route: r, params };
    }
  }
  return null;
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function unmount() {
  if (!active) return;
  active.ctrl.abort();
  clearTimeout(active.timer);
  try {
    active.inst.unmount?.();
  } catch (e) {
    console.warn('unmount', e);
  }
  active = null;
  banner(null);
}

function route() {
  const path = (location.hash || '#/').replace(/^#/, '') || '/';
  const session = api.current();
  renderChrome(session);
  if (!session && path !== '/login') {
    if (path !== '/' && path !== '/apps') sessionStorage.setItem(NEXT_KEY, path);
    go('#/login');
    return;
  }
  if (session && (path === '/' || path === '/login')) {
    go('#/apps');
    return;
  }
  const found = match(path);
  unmount();
  document.querySelectorAll('[data-nav]').forEach((a) => {
    if (found && a.dataset.nav === found.route.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  const ctrl = new AbortController();
  main.replaceChildren();
  let inst;
  if (!found) {
    inst = staticPage('Page not found', 'There is no page at this address.');
  } else if (found.route.admin && !api.isAdmin()) {
    inst = staticPage('Admins only', 'This page is for users with the admin role.');
  } else {
    inst = found.route.page.mount({
      main,
      params: found.params,
      signal: ctrl.signal,
      refreshNow: () => refreshNow(ctrl),
      navigate: go,
      endReason: consumeEndReason(),
      next: () => {
        const n = sessionStorage.getItem(NEXT_KEY);
        sessionStorage.removeItem(NEXT_KEY);
        return n && match(n) && n !== '/login' ? `#${n}` : '#/apps';
      },
    });
  }
  active = { inst, ctrl, timer: 0, due: 0, busy: false, again: false, live: found?.route.live || null, last: 0 };
  live.start();
  document.title = inst.title ? `${inst.title} · Thicket` : 'Thicket';
  if (!firstRoute && path !== '/login') main.focus({ preventScroll: true });
  firstRoute = false;
  window.scrollTo(0, 0);
  if (inst.refresh) tick(active);
}

function consumeEndReason() {
  const r = endReason;
  endReason = '';
  return r;
}

function staticPage(title, text) {
  main.replaceChildren(h('div', { class: 'page' },
    h('h1', { class: 'page-title' }, title), h('p', { class: 'muted' }, text),
    h('p', null, h('a', { href: '#/apps' }, 'Back to applications'))));
  return { title };
}

async function tick(a) {
  if (a !== active || a.ctrl.signal.aborted) return;
  clearTimeout(a.timer);
  a.due = 0;
  if (document.hidden) return; // visibilitychange resumes polling
  if (a.busy) {
    a.again = true;
    return;
  }
  a.busy = true;
  a.last = Date.now();
  try {
    await a.inst.refresh(a.ctrl.signal);
    if (a === active) banner(null);
  } catch (e) {
    if (a.ctrl.signal.aborted || e.name === 'AbortError' || !api.current()) {
      // Left the page or logged out: nothing to show.
    } else if (e instanceof TypeError) {
      banner('Cannot reach thicket-root. Retrying…');
    } else {
      banner(describe(e));
    }
  } finally {
    a.busy = false;
  }
  if (a !== active || a.ctrl.signal.aborted) return;
  if (a.again) {
    a.again = false;
    tick(a);
    return;
  }
  later(a, a.live && live.isOpen() ? SLOW_POLL_MS : POLL_MS);
}

// later schedules the page's next refresh in ms, unless one is due sooner.
function later(a, ms) {
  const due = Date.now() + ms;
  if (a.due && a.due <= due) return;
  clearTimeout(a.timer);
  a.due = due;
  a.timer = setTimeout(() => tick(a), ms);
}

// A change the open page shows refreshes it (debounced).
live.onChange((batch) => {
  const a = active;
  if (!a || !a.live || !a.inst.refresh) return;
  let real = batch.reset;
  let usage = false;
  for (const c of batch.changes || []) {
    if (!a.live.includes(c.kind)) continue;
    if (c.usage) usage = true;
    else real = true;
  }
  const after = (gap) => Math.max(LIVE_DEBOUNCE_MS, a.last + gap - Date.now());
  if (real) later(a, after(LIVE_GAP_MS));
  else if (usage) later(a, after(USAGE_REFRESH_MS));
});

// The stream opened: catch up once (changes may have been missed while it
// was closed), then poll slowly. It closed: poll as before.
live.onState((state) => {
  const a = active;
  if (!a || !a.live || !a.inst.refresh) return;
  if (state === 'open') later(a, LIVE_DEBOUNCE_MS);
  else if (state === 'off') later(a, POLL_MS);
});

function refreshNow(ctrl) {
  if (active && active.ctrl === ctrl) tick(active);
}

function renderChrome(session) {
  const bar = document.getElementById('topbar');
  bar.hidden = !session;
  document.body.classList.toggle('is-login', !session);
  const who = document.getElementById('who');
  if (session) {
    who.replaceChildren(h('span', { class: 'who-name' }, session.username),
      h('span', { class: ['chip', session.role === 'admin' ? 'chip-accent' : null] }, session.role));
  } else {
    who.replaceChildren();
  }
  document.querySelectorAll('[data-admin]').forEach((el) => {
    el.hidden = session?.role !== 'admin';
  });
}

document.getElementById('logout').addEventListener('click', () => api.logout());

api.onSessionEnd((reason) => {
  endReason = reason;
  if (reason === 'expired') {
    const path = (location.hash || '').replace(/^#/, '');
    if (path && path !== '/login') sessionStorage.setItem(NEXT_KEY, path);
  } else {
    sessionStorage.removeItem(NEXT_KEY);
  }
  unmount();
  live.stop();
  go('#/login');
});

// Hidden tabs are quiet: no stream, no polling.
document.addEventListener('visibilitychange', () => {
  if (document.hidden) {
    live.stop();
    return;
  }
  live.start();
  if (active && active.inst.refresh) tick(active);
});

window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (e) => {
  // Abort of a page's requests on navigation is expected, not an error.
  // Anything else is a bug and stays visible in the console.
  if (e.reason && e.reason.name === 'AbortError') e.preventDefault();
});

api.start();
route();
