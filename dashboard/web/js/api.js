// The REST API client: the same calls users script against, on the same
// origin, with "Authorization: Bearer <access token>". The session (tokens,
// user name, role) lives in sessionStorage, so it survives a reload but not
// the tab. The access token is refreshed a minute before it expires; a 401
// that a refresh cannot cure ends the session.

const KEY = 'thicket.session';
const REFRESH_AHEAD_MS = 60_000;

/** ApiError is a failed API call: HTTP status, the server's message and field. */
export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.field = field || '';
  }
}

let session = load();
let refreshTimer = 0;
let refreshing = null;
const listeners = new Set();

function load() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    if (s && typeof s.token === 'string' && typeof s.refresh_token === 'string') return s;
  } catch {
    // A damaged entry is the same as none.
  }
  return null;
}

function store(tokens) {
  const ttl = Math.max(1, Number(tokens.expires_in) || 900) * 1000;
  const now = Date.now();
  session = {
    token: tokens.token,
    refresh_token: tokens.refresh_token,
    username: tokens.username,
    role: tokens.role,
    expires_at: now + ttl,
    // A minute ahead, or half-way for tokens that live under two minutes.
    refresh_at: now + Math.max(ttl / 2, ttl - REFRESH_AHEAD_MS),
  };
  sessionStorage.setItem(KEY, JSON.stringify(session));
  schedule();
}

function schedule() {
  clearTimeout(refreshTimer);
  if (!session) return;
  const wait = Math.max(1000, session.refresh_at - Date.now());
  refreshTimer = setTimeout(() => {
    refresh().catch(() => {
      // refresh() has already ended the session if it must; a network
      // error is retried by the next request or the next timer.
      if (session) {
        session.refresh_at = Date.now() + 10_000;
        schedule();
      }
    });
  }, wait);
}

/** onSessionEnd registers fn(reason) for when the session ends ("logout" or "expired"). */
export function onSessionEnd(fn) {
  listeners.add(fn);
}

/** current is the session ({username, role, ...}) or null. */
export function current() {
  return session;
}

export function isAdmin() {
  return session?.role === 'admin';
}

/** start resumes a stored session's refresh timer (call once at load). */
export function start() {
  // An overdue refresh runs at once; a refresh token that is no longer
  // good ends the session there.
  if (session) schedule();
}

function end(reason) {
  clearTimeout(refreshTimer);
  const had = session !== null;
  session = null;
  sessionStorage.removeItem(KEY);
  if (had) for (const fn of listeners) fn(reason);
}

/**
 * logout ends the session at the server (its access and refresh tokens stop
 * working) and forgets it. The page does not wait for the server: if it
 * cannot be reached, the tokens expire on their own.
 */
export function logout() {
  const s = session;
  end('logout');
  if (!s) return Promise.resolve();
  return fetch('/api/auth/logout', {
    method: 'POST',
    headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ refresh_token: s.refresh_token }),
    keepalive: true,
  }).then(
    () => {},
    () => {},
  );
}

async function decode(res) {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function errorFrom(res, body) {
  const msg = body && typeof body === 'object' && body.error ? body.error : (typeof body === 'string' && body.trim()) || res.statusText || `HTTP ${res.status}`;
  return new ApiError(res.status, msg, body && typeof body === 'object' ? body.field : '');
}

/** login trades credentials for tokens; a wrong password throws ApiError 401. */
export async function login(username, password) {
  const res = await fetch('/api/auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const body = await decode(res);
  if (!res.ok) throw errorFrom(res, body);
  store(body);
  return session;
}

/** refresh trades the refresh token for new tokens (one call at a time). */
export function refresh() {
  if (!session) return Promise.reject(new ApiError(401, 'not logged in'));
  if (!refreshing) {
    const rt = session.refresh_token;
    refreshing = (async () => {
      const res = await fetch('/api/auth/refresh', {
        method: 'POST',
        headers: { Authorization: `Bearer ${rt}`, Accept: 'application/json' },
      });
      const body = await decode(res);
      if (res.status === 401) {
        end('expired');
        throw errorFrom(res, body);
      }
      if (!res.ok) throw errorFrom(res, body);
      store(body);
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** accessToken is the session's access token, refreshed first when due. */
export async function accessToken() {
  if (!session) throw new ApiError(401, 'not logged in');
  if (Date.now() >= session.refresh_at) {
    try {
      await refresh();
    } catch (e) {
      if (!session) throw e;
      // Network trouble: try with the token we have.
    }
  }
  return session.token;
}

/**
 * call is one API request. opts: json (a value to send as JSON), text (a
 * body to send as it is, with JSON content type), signal (AbortSignal).
 * It answers the decoded JSON body, or throws ApiError.
 */
export async function call(method, path, opts = {}) {
  await accessToken();
  for (let attempt = 0; ; attempt++) {
    const headers = { Authorization: `Bearer ${session.token}`, Accept: 'application/json' };
    let body;
    if (opts.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.json);
    } else if (opts.text !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = opts.text;
    }
    const res = await fetch(path, { method, headers, body, signal: opts.signal });
    const data = await decode(res);
    if (res.ok) return data;
    if (res.status === 401 && attempt === 0 && session) {
      // The token may have been revoked or the clock skewed: one refresh.
      try {
        await refresh();
        continue;
      } catch {
        end('expired');
      }
    }
    if (res.status === 401) end('expired');
    throw errorFrom(res, data);
  }
}


export const get = (path, opts) => call('GET', path, opts);
export const post = (path, opts) => call('POST', path, opts);
export const del = (path, opts) => call('DELETE', path, opts);
export const put = (path, opts) => call('PUT', path, opts);

/** seg escapes one path segment. */
export const seg = (s) => encodeURIComponent(String(s));
