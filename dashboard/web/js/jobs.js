// Collaborative workloads on the services page: a service's job list, which
// instance owns which job, the versions and the jobs nobody owns
// (GET /api/service/{id}/jobs).
import * as api from './api.js';
import { badge, h, table } from './dom.js';

// SHOWN is how many job names a row lists before "+N more".
const SHOWN = 40;

/** fetchJobs gets the job documents of the services that have a job list, by service id. */
export async function fetchJobs(services, signal) {
  const withJobs = services.filter((s) => s.jobs_count > 0);
  const docs = await Promise.all(withJobs.map(async (s) => {
    try {
      return await api.get(`/api/service/${api.seg(s.microserviceID)}/jobs`, { signal });
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      return { service_id: s.microserviceID, error: err.message || String(err) };
    }
  }));
  return Object.fromEntries(docs.map((d) => [d.service_id, d]));
}

function names(list) {
  const more = list.length - SHOWN;
  return h('span', { class: 'job-names' },
    list.slice(0, SHOWN).map((j) => h('code', { class: 'chip job' }, j)),
    more > 0 ? h('span', { class: 'muted' }, ` +${more} more`) : null);
}

/** jobsPanel renders a service's jobs: the owners by instance and the unowned jobs. */
export function jobsPanel(s, doc) {
  if (!doc) return null;
  const id = `jobs-${s.microserviceID}`;
  if (doc.error) {
    return h('div', { class: 'jobs', dataset: { jobs: s.microserviceID } },
      h('h3', { class: 'sub-title', id }, 'Jobs'), h('p', { class: 'muted jobs-note' }, `Could not load the jobs: ${doc.error}`));
  }
  const total = (doc.jobs || []).length;
  const unowned = doc.unowned || [];
  const holders = (doc.instances || []).filter((i) => (i.jobs || []).length || i.version);
  const rows = holders.map((i) => ({ kind: 'instance', ...i }));
  if (unowned.length) rows.push({ kind: 'unowned', jobs: unowned });
  return h('div', { class: 'jobs', dataset: { jobs: s.microserviceID }, 'aria-labelledby': id, role: 'group' },
    h('h3', { class: 'sub-title', id }, `Jobs (${total})`),
    h('p', { class: 'muted jobs-note' },
      `List version ${doc.version} · assignment version ${doc.assignment_version || '–'} · lease ${doc.lease_s} s · `,
      h('span', { class: unowned.length ? 'jobs-unowned-count warn' : 'jobs-unowned-count', dataset: { unowned: String(unowned.length) } },
        unowned.length ? `${unowned.length} without an owner` : 'every job owned')),
    rows.length ? table([
      { label: 'Owner', cell: (r) => (r.kind === 'unowned' ? h('strong', null, 'nobody') : `#${r.instance_number}`) },
      { label: 'Status', cell: (r) => (r.kind === 'unowned' ? '' : badge(r.status)) },
      { label: 'Version', cell: (r) => (r.kind === 'unowned' ? '' : String(r.version || '–')), class: 'num' },
      { label: 'Count', cell: (r) => String((r.jobs || []).length), class: 'num' },
      { label: 'Jobs', cell: (r) => names(r.jobs || []), class: 'wrap' },
    ], rows, {
      caption: `Jobs of ${s.microservice_name} by owner`,
      rowKey: (r) => (r.kind === 'unowned' ? 'unowned' : String(r.instance_number)),
      rowClass: (r) => (r.kind === 'unowned' ? 'jobs-unowned' : null),
    }) : h('p', { class: 'muted jobs-note' }, 'No jobs.'));
}
