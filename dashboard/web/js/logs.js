// The log panel: the last lines of an instance's output with the time the
// node read each and stderr marked, scrolled to the newest line while
// "Follow" is on; a search box filters the lines shown and Download saves
// them. The root keeps the tail its node last reported, and a new tail is a
// (usage) change of the instance on the live stream: the panel refreshes on
// the instance's changes, at most every 1.5 s, and polls every 1.5 s
// without the stream.
import * as api from './api.js';
import { badge, h } from './dom.js';
import { DrawerPanel } from './drawer.js';
import { describe } from './ui.js';

const LOG_POLL_MS = 1500;
const LINES = 200;

/** clock is a line's time as the panel shows it: local, to the millisecond. */
function clock(iso) {
  const d = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** matches filters lines by a case-insensitive search in their text. */
export function matches(lines, query) {
  const q = query.trim().toLowerCase();
  return q ? lines.filter((l) => l.text.toLowerCase().includes(q)) : lines;
}

/** label says what the panel shows: how many lines, from when to when, of what. */
export function label(shown, all, query) {
  const n = shown.length;
  const times = shown.filter((l) => l.time).map((l) => l.time);
  const span = times.length ? `, ${clock(times[0])} to ${clock(times[times.length - 1])}` : '';
  const of = all.length >= LINES
    ? `the last ${LINES} lines the node reported`
    : 'all the node reported (nodes send the last 8 KiB of output)';
  if (query.trim()) return `${n} of ${all.length} lines match “${query.trim()}”${span} (${of}).`;
  return `${n} line${n === 1 ? '' : 's'}${span}: ${of}.`;
}

/** asText is lines as a file: time (or -), stream (or -), text. */
export function asText(lines) {
  return lines.map((l) => `${l.time || '-'} ${l.stream || '-'} ${l.text}\n`).join('');
}

function lineNode(l) {
  const err = l.stream === 'stderr';
  return h('span', { class: ['log-line', err && 'is-stderr'] },
    l.time ? h('time', { class: 'log-time', datetime: l.time, title: l.time }, clock(l.time)) : h('span', { class: 'log-time' }, '—'),
    ' ',
    err ? h('span', { class: 'log-stream', title: 'written to stderr' }, 'stderr') : null,
    err ? ' ' : null,
    l.text, '\n');
}

export class LogPanel extends DrawerPanel {
  open(service, inst) {
    const follow = h('input', { type: 'checkbox', id: 'log-follow', checked: true });
    const status = h('span', { class: 'log-status' }, badge(inst.status));
    const search = h('input', { type: 'search', id: 'log-search', class: 'log-search', placeholder: 'Search', 'aria-label': 'Search the log lines' });
    const download = h('button', { type: 'button', id: 'log-download', class: 'btn btn-secondary btn-sm', disabled: true }, 'Download');
    const pre = h('pre', { class: 'log-text', id: 'log-text', tabindex: '0', 'aria-label': 'Log output', 'aria-live': 'off' });
    const note = h('p', { class: 'log-note muted', role: 'status' }, 'Loading…');
    // What is shown, truly: how many lines, their times, and that they are
    // the end of the output as the node last reported it.
    const sub = h('p', { class: 'muted small log-label' }, 'The end of the output, as the node last reported it.');
    this.show({
      titleId: 'log-title',
      title: ['Logs · ', `${service.microservice_name} #${inst.instance_number}`],
      sub,
      closeLabel: 'Close logs',
      backKey: `logs-${service.microserviceID}-${inst.instance_number}`,
      parts: [h('div', { class: 'drawer-tools' }, status, h('label', { class: 'check' }, follow, ' Follow'), search, download), note, pre],
    });
    pre.addEventListener('scroll', () => {
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
      if (follow.checked !== atBottom && !this.scrolling) follow.checked = atBottom;
    });
    follow.addEventListener('change', () => {
      if (follow.checked) this.toBottom(pre);
    });

    let lines = [];
    let shown = [];
    const render = () => {
      shown = matches(lines, search.value);
      sub.textContent = label(shown, lines, search.value);
      pre.replaceChildren(...shown.map(lineNode));
      download.disabled = shown.length === 0;
      download.title = `Save the ${shown.length} line${shown.length === 1 ? '' : 's'} shown`;
      if (follow.checked) this.toBottom(pre);
    };
    search.addEventListener('input', render);
    download.addEventListener('click', () => {
      const url = URL.createObjectURL(new Blob([asText(shown)], { type: 'text/plain' }));
      const a = h('a', { href: url, download: `${service.microservice_name}-${inst.instance_number}.log`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    });

    let last = null;
    const key = `${service.microserviceID}.${inst.instance_number}`;
    this.follow({ kinds: ['instance'], key, poll: LOG_POLL_MS, gap: LOG_POLL_MS, usageGap: LOG_POLL_MS }, async (signal) => {
      try {
        const res = await api.get(`/api/service/${api.seg(service.microserviceID)}/instance/${inst.instance_number}/logs?tail=${LINES}`, { signal });
        status.replaceChildren(badge(res.status));
        const got = res.lines || [];
        const key = JSON.stringify(got);
        if (key !== last) {
          last = key;
          lines = got;
          render();
        }
        note.textContent = got.length ? `Updated ${new Date().toLocaleTimeString()}` : `No output yet (the instance is ${res.status}).`;
      } catch (err) {
        if (signal.aborted || err.name === 'AbortError') return;
        note.textContent = err.name === 'ApiError' && err.status === 404 ? 'This instance no longer exists.' : describe(err);
      }
    });
  }

  toBottom(pre) {
    this.scrolling = true;
    pre.scrollTop = pre.scrollHeight;
    requestAnimationFrame(() => {
      this.scrolling = false;
    });
  }
}
