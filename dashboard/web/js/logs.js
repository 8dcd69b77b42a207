// The log panel: the last lines of an instance's output, polled while the
// panel is open, scrolled to the newest line while "Follow" is on.
import * as api from './api.js';
import { badge, h } from './dom.js';
import { DrawerPanel } from './drawer.js';
import { describe } from './ui.js';

const LOG_POLL_MS = 1500;
const LINES = 200;

export class LogPanel extends DrawerPanel {
  open(service, inst) {
    const follow = h('input', { type: 'checkbox', id: 'log-follow', checked: true });
    const status = h('span', { class: 'log-status' }, badge(inst.status));
    const pre = h('pre', { class: 'log-text', id: 'log-text', tabindex: '0', 'aria-label': 'Log output', 'aria-live': 'off' });
    const note = h('p', { class: 'log-note muted', role: 'status' }, 'Loading…');
    // What is shown, truly: the node reports the end of the output (a few
    // KiB), of which the panel shows at most LINES lines.
    const sub = h('p', { class: 'muted small log-label' }, 'The end of the output, as the node last reported it.');
    this.show({
      titleId: 'log-title',
      title: ['Logs · ', `${service.microservice_name} #${inst.instance_number}`],
      sub,
      closeLabel: 'Close logs',
      backKey: `logs-${service.microserviceID}-${inst.instance_number}`,
      parts: [h('div', { class: 'drawer-tools' }, status, h('label', { class: 'check' }, follow, ' Follow')), note, pre],
    });
    pre.addEventListener('scroll', () => {
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
      if (follow.checked !== atBottom && !this.scrolling) follow.checked = atBottom;
    });
    follow.addEventListener('change', () => {
      if (follow.checked) this.toBottom(pre);
    });

    let last = null;
    this.poll(LOG_POLL_MS, async (signal) => {
      try {
        const res = await api.get(`/api/service/${api.seg(service.microserviceID)}/instance/${inst.instance_number}/logs?lines=${LINES}`, { signal });
        status.replaceChildren(badge(res.status));
        const text = res.logs || '';
        if (text !== last) {
          last = text;
          const n = text ? text.replace(/\n$/, '').split('\n').length : 0;
          sub.textContent = n >= LINES
            ? `The last ${LINES} lines, as the node last reported them.`
            : `${n} line${n === 1 ? '' : 's'}: the end of the output as the node last reported it (nodes send at most the last few KiB).`;
          pre.textContent = text;
          if (follow.checked) this.toBottom(pre);
        }
        note.textContent = text ? `Updated ${new Date().toLocaleTimeString()}` : `No output yet (the instance is ${res.status}).`;
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
