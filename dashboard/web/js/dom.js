// Small DOM helpers. Text always goes in as text nodes (never as HTML), so
// names, log lines and error messages from the API cannot inject markup.

/**
 * h builds an element: h('button', {class: 'btn', onclick: fn}, 'Save').
 * Props: class, text, dataset ({key: value}), style ({prop: value}, set via
 * CSSOM so the page's CSP needs no 'unsafe-inline'), on<event> handlers,
 * DOM properties that exist on the element (value, checked, disabled,
 * hidden, ...) and any other attribute (aria-*, role, for, ...). null,
 * undefined and false props are left out. Children may be nodes, strings,
 * numbers, arrays or null/false (skipped).
 */
// ATTRS are always set as attributes, never as properties.
const ATTRS = new Set(['spellcheck', 'autocapitalize', 'role', 'list', 'form', 'inputmode', 'enterkeyhint', 'for']);

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') for (const [p, sv] of Object.entries(v)) el.style.setProperty(p, sv);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k in el && !ATTRS.has(k) && !k.includes('-')) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/**
 * Region re-renders a container from data only when the data changed, and
 * keeps keyboard focus on the element with the same data-key across the
 * re-render, so that polling never steals focus or flickers.
 */
export class Region {
  constructor(el) {
    this.el = el;
    this.last = undefined;
  }

  /** update renders render(data) into the region if data differs from last time. */
  update(data, render) {
    const sig = JSON.stringify(data);
    if (sig === this.last) return false;
    this.last = sig;
    const active = document.activeElement;
    const key = active && this.el.contains(active) ? active.dataset.key : undefined;
    this.el.replaceChildren(...[render(data)].flat().filter(Boolean));
    if (key) {
      const again = this.el.querySelector(`[data-key="${CSS.escape(key)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
    return true;
  }

  /** reset forces the next update to render. */
  reset() {
    this.last = undefined;
  }
}

const STATUS_TONE = {
  RUNNING: 'ok',
  COMPLETED: 'done',
  CREATED: 'idle',
  REQUESTED: 'pending',
  SCHEDULED: 'pending',
  CREATING: 'pending',
  NO_CAPACITY: 'bad',
  FAILED: 'bad',
  LOST: 'bad',
  UNKNOWN: 'warn',
  DEGRADED: 'warn',
  BACKOFF: 'warn', // a restart is pending: not final
  CORDONED: 'warn', // a node that takes no new instances
  DRAINING: 'warn', // a drained node whose instances are still moving
  DRAINED: 'warn',
};

/** badge shows an instance or service status with a colour and a dot. */
export function badge(status, extra) {
  const tone = STATUS_TONE[status] || 'idle';
  return h('span', { class: ['badge', `tone-${tone}`, extra], dataset: { status: status || '' } },
    h('span', { class: 'dot', 'aria-hidden': 'true' }), status || 'UNKNOWN');
}

/** liveness shows an active/inactive flag. */
export function liveness(active, label) {
  return h('span', { class: ['badge', active ? 'tone-ok' : 'tone-bad'] },
    h('span', { class: 'dot', 'aria-hidden': 'true' }), label || (active ? 'active' : 'inactive'));
}

/**
 * meter is a usage bar: label, percentage used and what 100 % is.
 * It is a real meter for assistive technology (role=meter).
 */
export function meter(label, percent, ofText) {
  const p = Number.isFinite(percent) ? Math.max(0, Math.min(100, percent)) : 0;
  const tone = p >= 90 ? 'bad' : p >= 70 ? 'warn' : 'ok';
  const shown = `${p < 10 && p > 0 ? p.toFixed(1) : Math.round(p)} %`;
  return h('div', { class: 'meter' },
    h('div', { class: 'meter-head' },
      h('span', { class: 'meter-label' }, label),
      h('span', { class: 'meter-value' }, shown, ofText ? h('span', { class: 'muted' }, ` of ${ofText}`) : null)),
    h('div', {
      class: ['meter-track', `tone-${tone}`], role: 'meter', 'aria-label': `${label}${ofText ? ` of ${ofText}` : ''}`,
      'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(Math.round(p)),
      'aria-valuetext': shown,
    }, h('div', { class: 'meter-fill', style: { width: `${p}%` } })));
}

/** mb formats megabytes. */
export function mb(n) {
  if (!Number.isFinite(n)) return '–';
  if (n >= 1024) return `${(n / 1024).toFixed(n >= 10240 ? 0 : 1)} GiB`;
  return `${n} MiB`;
}

const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** ago formats a timestamp relative to now ("5 minutes ago"). */
export function ago(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t) || t <= 0) return '–';
  const s = Math.round((t - Date.now()) / 1000);
  const abs = Math.abs(s);
  if (abs < 5) return 'just now';
  if (abs < 60) return rtf.format(s, 'second');
  if (abs < 3600) return rtf.format(Math.round(s / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(s / 3600), 'hour');
  return rtf.format(Math.round(s / 86400), 'day');
}

/** time renders a <time> with a relative text and the exact time as tooltip. */
export function time(iso) {
  const t = Date.parse(iso);
  return h('time', { datetime: iso || '', title: Number.isFinite(t) ? new Date(t).toLocaleString() : '' }, ago(iso));
}

/** empty renders an empty state. */
export function empty(title, ...body) {
  return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, title), ...body.map((b) => h('p', { class: 'muted' }, b)));
}

/**
 * table renders a responsive table: on narrow screens each row becomes a
 * card and every cell shows its column's label (data-label).
 * columns: [{label, cell: (row) => node|string, class}], rows: array.
 */
export function table(columns, rows, { caption, rowKey, rowClass } = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'table' },
      caption ? h('caption', { class: 'sr-only' }, caption) : null,
      h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
      h('tbody', null, rows.map((r) => h('tr', { dataset: rowKey ? { row: rowKey(r) } : undefined, class: rowClass ? rowClass(r) : null },
        columns.map((c) => {
          const v = c.cell(r);
          return h('td', { class: c.class, 'data-label': c.label }, v === '' || v === null || v === undefined ? h('span', { class: 'muted' }, '–') : v);
        }))))));
}

/** field renders a labelled input with an optional hint and an error slot. */
export function field({ id, label, input, hint }) {
  const hintId = hint ? `${id}-hint` : null;
  const errId = `${id}-error`;
  input.id = id;
  input.setAttribute('aria-describedby', [hintId, errId].filter(Boolean).join(' '));
  return h('div', { class: 'field', dataset: { field: id } },
    h('label', { for: id }, label),
    input,
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    h('p', { class: 'field-error', id: errId, hidden: true }));
}

/** setFieldError shows (or with msg empty clears) the error of a field(). */
export function setFieldError(container, id, msg) {
  const input = container.querySelector(`#${CSS.escape(id)}`);
  const err = container.querySelector(`#${CSS.escape(id)}-error`);
  if (!input || !err) return false;
  if (msg) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
  err.textContent = msg || '';
  err.hidden = !msg;
  return true;
}

/** pageHeader renders the title row of a page. */
export function pageHeader(title, { sub, actions, crumbs } = {}) {
  return h('div', { class: 'page-head' },
    crumbs ? h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, crumbs) : null,
    h('div', { class: 'page-title-row' },
      h('div', null, h('h1', { class: 'page-title' }, title), sub ? h('p', { class: 'page-sub muted' }, sub) : null),
      actions ? h('div', { class: 'page-actions' }, actions) : null));
}
