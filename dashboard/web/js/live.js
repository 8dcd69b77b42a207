// Live updates: follows the root's stream of changes (GET /api/events/stream,
// server-sent events) so that the open page refreshes when something it
// shows changed, instead of re-fetching its lists every 2 s.
//
// The stream is read with fetch(), which sends the access token in the
// Authorization header like every other call (EventSource cannot, and a
// token in the URL would land in logs). It reconnects with backoff and
// resumes after the last message it got (Last-Event-ID); the root ends it
// when the token expires, and it comes back with a fresh one. While the
// tab is hidden it is closed. Its state is on <html data-live>: "open",
// "connecting" or "off" (the router then polls as before).
import * as api from './api.js';

const MAX_BACKOFF_MS = 30_000;

const changeFns = new Set();
const stateFns = new Set();
let ctrl = null; // of the open or opening stream
let lastId = '';
let state = 'off';
let backoff = 0;
let retry = 0;

/** onChange registers fn(batch) for each batch of changes ({reset, changes: [{kind, id, usage}]}). */
export function onChange(fn) {
  changeFns.add(fn);
}

/** onState registers fn(state) for "open", "connecting" and "off". */
export function onState(fn) {
  stateFns.add(fn);
}

/** isOpen reports whether changes arrive (the router can poll slowly). */
export function isOpen() {
  return state === 'open';
}

function setState(s) {
  if (s === state) return;
  state = s;
  document.documentElement.dataset.live = s;
  for (const fn of stateFns) fn(s);
}

/** start opens the stream if it is not open (logged in, tab visible). */
export function start() {
  if (ctrl || !api.current() || document.hidden) return;
  clearTimeout(retry);
  connect();
}

/** stop closes the stream (tab hidden, logged out). */
export function stop() {
  clearTimeout(retry);
  if (ctrl) ctrl.abort();
  ctrl = null;
  setState('off');
}

async function connect() {
  const c = new AbortController();
  ctrl = c;
  setState('connecting');
  let got = false;
  try {
    const token = await api.accessToken();
    const headers = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' };
    if (lastId) headers['Last-Event-ID'] = lastId;
    const res = await fetch('/api/events/stream', { headers, signal: c.signal, cache: 'no-store' });
    if (res.status === 401) await api.refresh().catch(() => {});
    if (!res.ok || !res.body) throw new Error(`stream: HTTP ${res.status}`);
    got = await read(res.body, c);
  } catch {
    // Unreachable, refused or aborted: polling carries on meanwhile.
  }
  if (ctrl !== c) return; // stopped, or replaced
  ctrl = null;
  setState('off');
  if (!api.current() || document.hidden) return;
  backoff = got ? 0 : Math.min(MAX_BACKOFF_MS, Math.max(1000, backoff * 2));
  retry = setTimeout(start, backoff + Math.random() * 250);
}

// read parses the stream until it ends; it reports whether it got any
// message (then the next connection is tried at once).
async function read(body, c) {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let got = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done || c.signal.aborted) return got;
    buf += dec.decode(value, { stream: true });
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const msg = buf.slice(0, end);
      buf = buf.slice(end + 2);
      got = true;
      dispatch(msg);
    }
  }
}

function dispatch(msg) {
  let event = 'message';
  let id = '';
  let data = '';
  for (const line of msg.split('\n')) {
    const i = line.indexOf(':');
    if (i === 0) continue; // a comment: the heartbeat
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'id') id = value;
    else if (field === 'data') data += value;
  }
  if (event === 'hello') {
    backoff = 0;
    setState('open');
    return;
  }
  if (event !== 'change') return;
  if (id) lastId = id;
  let batch;
  try {
    batch = JSON.parse(data);
  } catch {
    return;
  }
  for (const fn of changeFns) fn(batch);
}
