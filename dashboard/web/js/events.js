// The events panel: what happened to an instance (placed, pulling, started,
// exited, restarting, node lost, ...), oldest first, as its node, its
// cluster and the root told it, with its usage graphs; refreshed while open
// when the live stream tells of new events or a change of the instance (its
// usage at most every 5 s), polled every 3 s without the stream.
import * as api from './api.js';
import { h, time } from './dom.js';
import { DrawerPanel } from './drawer.js';
import { describe } from './ui.js';
import { sparkline } from './spark.js';

const POLL_MS = 3000;

export class EventPanel extends DrawerPanel {
  open(service, inst) {
    const list = h('ol', { class: 'timeline', id: 'event-list', 'aria-label': 'Events, oldest first' });
    const note = h('p', { class: 'log-note muted', role: 'status' }, 'Loading…');
    const usage = h('div', { class: 'sparks', id: 'instance-usage' });
    this.show({
      titleId: 'events-title',
      title: ['Events · ', `${service.microservice_name} #${inst.instance_number}`],
      sub: h('p', { class: 'muted small' }, 'What happened to this instance, oldest first, as its node, its cluster and the root told it (the root keeps the latest 50).'),
      closeLabel: 'Close events',
      backKey: `events-${service.microserviceID}-${inst.instance_number}`,
      parts: [usage, note, h('div', { class: 'timeline-wrap' }, list)],
    });
    let last = '';
    const key = `${service.microserviceID}.${inst.instance_number}`;
    this.follow({ kinds: ['event', 'instance'], key, poll: POLL_MS }, async (signal) => {
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
        note.hidden = evs.length > 0;
        await this.showUsage(usage, service, inst, signal);
        note.textContent = evs.length ? '' : 'No events yet.';
      } catch (err) {
        if (signal.aborted || err.name === 'AbortError') return;
        note.hidden = false;
        note.textContent = err.name === 'ApiError' && err.status === 404 ? 'This instance no longer exists.' : describe(err);
      }
    });
  }

  // showUsage draws the instance's CPU and memory over the last hour.
  async showUsage(box, service, inst, signal) {
    const res = await api.get(`/api/service/${api.seg(service.microserviceID)}/instance/${inst.instance_number}/usage`, { signal });
    const samples = res.samples || [];
    const sig = JSON.stringify(samples);
    if (sig === box.dataset.sig) return;
    box.dataset.sig = sig;
    const last = (vs, unit) => (vs.length ? `${Math.round(vs[vs.length - 1])} ${unit}` : 'no samples yet');
    const graph = (name, values, unit, max) => h('div', { class: 'spark-box', dataset: { graph: name } },
      h('span', { class: 'muted small' }, `${name}, last hour`),
      sparkline(values, { max, label: `${name} over the last hour: ${last(values, unit)}` }),
      h('span', { class: 'small' }, last(values, unit)));
    const cpu = samples.map((x) => x.cpu_percent);
    const mem = samples.map((x) => x.memory);
    box.replaceChildren(graph('CPU', cpu, '%', 100), graph('Memory', mem, 'MB', service.memory || 1));
  }
}
