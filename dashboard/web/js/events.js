// The events panel: what happened to an instance (placed, pulling, started,
// exited, restarting, node lost, ...), oldest first, as its node, its
// cluster and the root told it; polled while open.
import * as api from './api.js';
import { h, time } from './dom.js';
import { describe } from './ui.js';

const POLL_MS = 3000;

export class EventPanel {
  constructor(pageSignal) {
    this.pageSignal = pageSignal;
    this.dlg = null;
    this.timer = 0;
    this.ctrl = null;
  }

  open(service, inst) {
    this.close();
    const key = `events-${service.microserviceID}-${inst.instance_number}`;
    this.ctrl = new AbortController();
    const signal = this.ctrl.signal;
    const list = h('ol', { class: 'timeline', id: 'event-list', 'aria-label': 'Events, oldest first' });
    const note = h('p', { class: 'log-note muted', role: 'status' }, 'Loading…');
    const dlg = h('dialog', { class: 'drawer', 'aria-labelledby': 'events-title' },
      h('div', { class: 'drawer-head' },
        h('div', null,
          h('h2', { class: 'drawer-title', id: 'events-title' }, 'Events · ', `${service.microservice_name} #${inst.instance_number}`),
          h('p', { class: 'muted small' }, 'What happened to this instance, oldest first, as its node, its cluster and the root told it (the root keeps the latest 50).')),
        h('button', { type: 'button', class: 'btn btn-quiet btn-icon', 'aria-label': 'Close events', onclick: () => this.close() }, '×')),
      note,
      h('div', { class: 'timeline-wrap' }, list));
    dlg.addEventListener('close', () => {
      this.stop();
      dlg.remove();
      if (this.dlg === dlg) this.dlg = null;
      const back = document.querySelector(`[data-key="${CSS.escape(key)}"]`);
      if (back) back.focus();
    });
    document.body.append(dlg);
    dlg.showModal();
    this.dlg = dlg;

    let last = '';
    const poll = async () => {
      if (signal.aborted || this.pageSignal.aborted) return;
      if (!document.hidden) {
        try {
          const res = await api.get(`/api/service/${api.seg(service.microserviceID)}/instance/${inst.instance_number}/events`, { signal });
          const evs = res.events || [];
          const sig = JSON.stringify(evs);
          if (sig !== last) {
            last = sig;
            list.replaceChildren(...evs.map((ev) => h('li', { class: 'timeline-item', dataset: { source: ev.source } },
              h('span', { class: 'timeline-time' }, time(ev.time)),
              h('span', { class: 'timeline-msg' }, ev.message),
              h('span', { class: 'timeline-source muted small' }, ev.source))));
          }
          note.textContent = evs.length ? '' : 'No events yet.';
          note.hidden = evs.length > 0;
        } catch (err) {
          if (signal.aborted || err.name === 'AbortError') return;
          note.hidden = false;
          note.textContent = err.name === 'ApiError' && err.status === 404 ? 'This instance no longer exists.' : describe(err);
        }
      }
      if (!signal.aborted) this.timer = setTimeout(poll, POLL_MS);
    };
    poll();
  }

  stop() {
    clearTimeout(this.timer);
    if (this.ctrl) this.ctrl.abort();
    this.ctrl = null;
  }

  close() {
    this.stop();
    if (this.dlg && this.dlg.open) this.dlg.close();
  }
}
