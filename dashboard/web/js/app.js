// Entry point: hash router, page lifecycle and refreshes.
//
// Each page module exports mount(ctx) and returns {title, refresh, unmount}.
// refresh(signal) loads the page's data and renders what changed; the router
// calls it at once and then again when something the page shows changed, as
// the live stream says (live.js; a route's `live` lists the kinds of change
// it shows), with a slow poll as a safety net; without the stream it polls
// every 2 s while the tab is visible (refresher.js). A page may ask for a
// refresh at a time (ctx.refreshAt: a token's expiry, which no change
// announces). Leaving a page aborts its requests.
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
import { Refresher, ofKinds } from './refresher.js';

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
  { re: /^\/users$/, page: usersPage, nav: 'users', admin: true, live: ['user'] },
  { re: /^\/tokens$/, page: tokensPage, nav: 'tokens', admin: true, live: ['join_token'] },
  { re: /^\/clusters\/([^/]+)\/node-tokens$/, page: nodeTokensPage, nav: 'infra', admin: true, params: ['clusterId'], live: ['cluster'] },
];

const main = document.getElementById('main');
let active = null; // {inst: the page, ctrl, refresher}
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
      refreshAt: (ms) => refreshAt(ctrl, ms),
      navigate: go,
      endReason: consumeEndReason(),
      next: () => {
        const n = sessionStorage.getItem(NEXT_KEY);
        sessionStorage.removeItem(NEXT_KEY);
        return n && match(n) && n !== '/login' ? `#${n}` : '#/apps';
      },
    });
  }
  const a = { inst, ctrl, refresher: null };
  active = a;
  live.start();
  document.title = inst.title ? `${inst.title} · Thicket` : 'Thicket';
  if (!firstRoute && path !== '/login') main.focus({ preventScroll: true });
  firstRoute = false;
  window.scrollTo(0, 0);
  const kinds = found?.route.live;
  if (inst.refresh) {
    a.refresher = new Refresher({ run: (signal) => refreshPage(a, signal), signal: ctrl.signal, match: kinds ? ofKinds(kinds) : null });
  }
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

// refreshPage runs the page's refresh and shows what went wrong.
async function refreshPage(a, signal) {
  try {
    await a.inst.refresh(signal);
    if (a === active) banner(null);
  } catch (e) {
    if (signal.aborted || e.name === 'AbortError' || !api.current()) {
      // Left the page or logged out: nothing to show.
    } else if (e instanceof TypeError) {
      banner('Cannot reach thicket-root. Retrying…');
    } else {
      banner(describe(e));
    }
  }
}

function refreshNow(ctrl) {
  if (active && active.ctrl === ctrl) active.refresher?.now();
}

// refreshAt refreshes the page in ms (at least a second: a clock ahead of
// the root's must not make it ask again and again).
function refreshAt(ctrl, ms) {
  if (active && active.ctrl === ctrl) active.refresher?.later(Math.max(1000, ms));
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

// Hidden tabs are quiet: no stream, no polling (refresher.js refreshes
// what is on screen when the tab is shown again).
document.addEventListener('visibilitychange', () => {
  if (document.hidden) live.stop();
  else live.start();
});

window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (e) => {
  // Abort of a page's requests on navigation is expected, not an error.
  // Anything else is a bug and stays visible in the console.
  if (e.reason && e.reason.name === 'AbortError') e.preventDefault();
});

api.start();
route();
