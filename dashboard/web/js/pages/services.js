// The services of one application: status, instances, scaling, logs.
import * as api from '../api.js';
import { Region, badge, empty, h, mb, pageHeader, table, time } from '../dom.js';
import { busy, confirmAction, describe, toast } from '../ui.js';
import { LogPanel } from '../logs.js';
import { EventPanel } from '../events.js';
import { fetchJobs, jobsPanel } from '../jobs.js';
import { command, environment } from '../stored.js';
import { openAddService } from '../addservice.js';
import { allowFromForm } from '../allowfrom.js';
import { openEditService, rolloutNote } from '../editservice.js';

const NAMES_EVERY_MS = 30000;

export function mount(ctx) {
  const appId = ctx.params.appId;
  const head = h('div');
  const body = h('div', { class: 'stack' }, h('p', { class: 'muted loading' }, 'Loading services…'));
  const headRegion = new Region(head);
  const bodyRegion = new Region(body);
  const logs = new LogPanel(ctx.signal);
  const events = new EventPanel(ctx.signal);
  let clusterNames = {};
  let namesFetched = -Infinity;
  let jobDocs = {}; // by service id: the services with a job list
  const revealed = new Set(); // services whose environment values are shown

  ctx.main.append(h('div', { class: 'page' }, head, body));

  async function refresh(signal) {
    let app;
    let services;
    try {
      [app, services] = await Promise.all([
        api.get(`/api/application/${api.seg(appId)}`, { signal }),
        api.get(`/api/services/${api.seg(appId)}`, { signal }),
      ]);
    } catch (err) {
      if (err.name === 'ApiError' && err.status === 404) {
        headRegion.update({ missing: true }, () => pageHeader('Application not found', { crumbs: crumbs() }));
        bodyRegion.update({ missing: true }, () => h('div', { class: 'card' },
          empty('This application does not exist (any more).', 'It may have been deleted.'),
          h('p', { class: 'center' }, h('a', { href: '#/apps', class: 'btn btn-secondary' }, 'Back to applications'))));
        logs.close();
        events.close();
        return;
      }
      throw err;
    }
    // Cluster names: fetched when an instance names a cluster not known
    // yet (at most every 30 s), not at every refresh: the list carries every
    // cluster's nodes.
    const unknown = services.some((sv) => (sv.instance_list || []).some((i) => i.cluster_id && !(i.cluster_id in clusterNames)));
    if (unknown && Date.now() - namesFetched > NAMES_EVERY_MS) {
      namesFetched = Date.now();
      try {
        const clusters = await api.get('/api/clusters/', { signal });
        clusterNames = Object.fromEntries((clusters || []).map((c) => [c._id, c.cluster_name]));
      } catch (err) {
        if (err.name === 'AbortError') throw err;
        // Names are a nicety; ids are shown instead.
      }
    }
    jobDocs = await fetchJobs(services, signal);
    document.title = `${app.application_name} · Thicket`;
    headRegion.update(app, renderHead);
    bodyRegion.update({ services, clusterNames, jobDocs, revealed: [...revealed] }, renderBody);
  }

  function crumbs(name) {
    return [h('a', { href: '#/apps' }, 'Applications'), h('span', { 'aria-hidden': 'true' }, ' / '),
      h('span', { 'aria-current': 'page' }, name || 'Services')];
  }

  function renderHead(app) {
    return pageHeader(h('span', null, app.application_name, ' ', h('span', { class: 'chip chip-lg' }, app.application_namespace),
      // Tenancy: its own tenant, apart from the owner's other applications.
      app.isolation === 'application' ? [' ', h('span', {
        class: 'chip chip-lg', dataset: { isolation: app.isolation },
        title: 'Isolated from its owner\'s other applications too: only its own instances and the peers its services allow may connect',
      }, 'isolated')] : null), {
      crumbs: crumbs(app.application_name),
      sub: [app.application_desc, api.isAdmin() ? `owner ${app.userId}` : ''].filter(Boolean).join(' · '),
      actions: addServiceButton(app),
    });
  }

  function renderBody({ services }) {
    if (!services.length) {
      return h('div', { class: 'card' }, empty('This application has no services.'));
    }
    return services.map(renderService);
  }

  function renderService(s) {
    const titleId = `svc-${s.microserviceID}`;
    const insts = s.instance_list || [];
    const facts = [
      ['Virtualization', s.virtualization],
      ['Code', h('code', { class: 'break' }, s.code)],
      ['Round-robin IP', s.RR_ip ? h('code', null, s.RR_ip) : ''],
      ['Closest IP', s.closest_ip ? h('code', null, s.closest_ip) : ''],
      ['Ports', s.port ? h('code', null, s.port) : ''],
      ['Resources', `${s.vcpus} vCPU · ${mb(s.memory)}${s.vgpus ? ` · ${s.vgpus} vGPU` : ''}${s.one_shot ? ' · one-shot' : ''}`],
      ['Command', command(s)],
      ['Environment', environment(s, revealed.has(s.microserviceID), toggleEnv)],
      ['Allowed from', allowFromForm(s, { signal: ctx.signal, saved: () => ctx.refreshNow() })],
    ];
    return h('section', { class: 'card service', 'aria-labelledby': titleId, dataset: { service: s.microserviceID } },
      h('div', { class: 'service-head' },
        h('div', { class: 'service-title' },
          h('h2', { id: titleId, class: 'section-title' }, s.microservice_name, ' ', h('span', { class: 'chip' }, s.microservice_namespace)),
          h('div', { class: 'service-status' }, badge(s.status),
            s.desired_instances ? h('span', { class: 'count', dataset: { running: String(s.running_instances) } }, `${s.running_instances}/${s.desired_instances} running`) : null,
            s.completions ? h('span', { class: 'count', dataset: { completed: String(s.succeeded || 0) } }, `${s.succeeded || 0}/${s.completions} completed`) : null,
            h('span', { class: 'muted' }, s.status_detail)),
          rolloutNote(s)),
        // An indexed job's instances are fixed: nothing to scale or add.
        s.completions ? null : h('div', { class: 'btn-row' },
          scaleForm(s),
          h('button', {
            type: 'button', class: 'btn btn-primary btn-sm', dataset: { key: `add-${s.microserviceID}`, action: 'add-instance' },
            'aria-label': `Add an instance of ${s.microservice_name}`,
            onclick: (e) => addInstance(e.currentTarget, s),
          }, '+ Add instance'),
          editButton(s),
          deleteButton(s))),
      h('dl', { class: 'facts' }, facts.map(([k, v]) => h('div', { class: 'fact' }, h('dt', null, k), h('dd', null, v === '' ? h('span', { class: 'muted' }, '–') : v)))),
      h('div', { class: 'instances' },
        h('h3', { class: 'sub-title' }, `Instances (${insts.length})`),
        insts.length ? instanceTable(s, insts) : h('p', { class: 'muted instances-empty' }, 'No instances. Add one to run this service.')),
      jobsPanel(s, jobDocs[s.microserviceID]));
  }

  function instanceTable(s, insts) {
    return table([
      { label: '#', cell: (i) => String(i.instance_number), class: 'num' },
      { label: 'Status', cell: (i) => (i.outdated
        ? h('span', null, badge(i.status), ' ', h('span', { class: 'chip outdated', title: 'Runs the spec from before the last edit; the rollout replaces it.' }, 'old spec'))
        : badge(i.status)) },
      { label: 'Detail', cell: (i) => (i.status === 'BACKOFF' && i.restart_at
        ? h('span', null, i.status_detail, h('span', { class: 'muted' }, ' · restarts at ', h('time', { datetime: i.restart_at }, new Date(i.restart_at).toLocaleTimeString())))
        : i.status_detail), class: 'wrap' },
      // Where an UNKNOWN instance ran is what was known when its node fell
      // silent: greyed, with its age.
      { label: 'Node', cell: (i) => (i.status === 'UNKNOWN' && i.node_name
        ? h('span', null, i.node_name, h('span', { class: 'stale' }, ' · last known ', time(i.updated_at)))
        : i.node_name) },
      { label: 'Cluster', cell: (i) => (i.cluster_id ? h('span', { title: i.cluster_id }, clusterNames[i.cluster_id] || short(i.cluster_id)) : '') },
      { label: 'Instance IP', cell: (i) => (i.instance_ip ? h('code', null, i.instance_ip) : '') },
      { label: 'Host', cell: (i) => (i.host_ip ? h('code', null, i.host_port ? `${i.host_ip}:${i.host_port}` : i.host_ip) : '') },
      { label: 'Restarts', cell: (i) => String(i.restarts ?? 0), class: 'num' },
      // An overloaded service (several implementations): the one chosen
      // per instance, and why each was or was not, one line each.
      (s.implementations || []).length ? {
        label: 'Implementation',
        class: 'wrap',
        cell: (i) => h('div', { class: 'implementation' },
          h('strong', null, i.implementation || '–'),
          (i.implementation_choice || []).length
            ? h('ul', { class: 'muted choice' }, (i.implementation_choice || []).map((c) => h('li', null, c)))
            : null),
      } : null,
      { label: 'Updated', cell: (i) => time(i.updated_at) },
      {
        label: 'Actions',
        class: 'actions',
        cell: (i) => h('div', { class: 'btn-row' },
          h('button', {
            type: 'button', class: 'btn btn-secondary btn-sm', dataset: { key: `logs-${s.microserviceID}-${i.instance_number}`, action: 'logs' },
            'aria-label': `Logs of ${s.microservice_name} instance ${i.instance_number}`,
            onclick: () => logs.open(s, i),
          }, 'Logs'),
          h('button', {
            type: 'button', class: 'btn btn-secondary btn-sm', dataset: { key: `events-${s.microserviceID}-${i.instance_number}`, action: 'events' },
            'aria-label': `Events of ${s.microservice_name} instance ${i.instance_number}`,
            onclick: () => events.open(s, i),
          }, 'Events'),
          h('button', {
            type: 'button', class: 'btn btn-danger-quiet btn-sm', dataset: { key: `rm-${s.microserviceID}-${i.instance_number}`, action: 'remove-instance' },
            'aria-label': `Remove ${s.microservice_name} instance ${i.instance_number}`,
            onclick: (e) => removeInstance(e.currentTarget, s, i),
          }, 'Remove')),
      },
    ].filter(Boolean), insts, {
      caption: `Instances of ${s.microservice_name}`, rowKey: (i) => String(i.instance_number),
      rowClass: (i) => (i.status === 'UNKNOWN' ? 'is-stale' : null),
    });
  }

  // scaleForm: scale to N instances (adds new ones, removes the highest
  // numbers), as thicket scale does.
  function scaleForm(s) {
    const id = `scale-${s.microserviceID}`;
    const input = h('input', {
      type: 'number', id, min: '0', max: '100', step: '1', value: String((s.instance_list || []).length), class: 'scale-input',
      dataset: { key: `scale-n-${s.microserviceID}` }, 'aria-label': `Instances of ${s.microservice_name}`,
    });
    const btn = h('button', { type: 'submit', class: 'btn btn-secondary btn-sm', dataset: { key: `scale-${s.microserviceID}`, action: 'scale' } }, 'Scale');
    return h('form', {
      class: 'scale-form', novalidate: true,
      onsubmit: (e) => {
        e.preventDefault();
        busy(btn, () => scale(s, input.value));
      },
    }, h('label', { for: id, class: 'muted small' }, 'Instances'), input, btn);
  }

  async function scale(s, value) {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 100) {
      toast('The number of instances must be a whole number from 0 to 100.', { tone: 'error' });
      return;
    }
    const insts = [...(s.instance_list || [])].sort((a, b) => a.instance_number - b.instance_number);
    const base = `/api/service/${api.seg(s.microserviceID)}/instance`;
    try {
      for (let i = insts.length; i < n; i++) await api.post(base, { signal: ctx.signal });
      for (const i of insts.slice(n).reverse()) await api.del(`${base}/${i.instance_number}`, { signal: ctx.signal });
      toast(`${s.microservice_name}: ${n} instance${n === 1 ? '' : 's'}.`);
    } catch (err) {
      if (err.name !== 'AbortError') toast(describe(err), { tone: 'error' });
    }
    ctx.refreshNow();
  }

  async function addInstance(btn, s) {
    await busy(btn, async () => {
      try {
        const res = await api.post(`/api/service/${api.seg(s.microserviceID)}/instance`, { signal: ctx.signal });
        toast(`Requested instance #${res.instance_number} of ${s.microservice_name}.`);
      } catch (err) {
        if (err.name !== 'AbortError') toast(describe(err), { tone: 'error' });
      }
    });
    ctx.refreshNow();
  }

  function addServiceButton(app) {
    return h('button', {
      type: 'button', class: 'btn btn-primary btn-sm', dataset: { action: 'add-service', key: 'add-service' },
      onclick: () => openAddService(app, (name) => {
        toast(`Added service ${name}.`);
        ctx.refreshNow();
      }),
    }, '+ Add service');
  }

  function toggleEnv(id) {
    if (!revealed.delete(id)) revealed.add(id);
    ctx.refreshNow();
  }

  // Editing a service: the SLA form filled with it (editservice.js).
  function editButton(s) {
    return h('button', {
      type: 'button', class: 'btn btn-secondary btn-sm', dataset: { key: `edit-${s.microserviceID}`, action: 'edit-service' },
      'aria-label': `Edit service ${s.microservice_name}`,
      onclick: () => openEditService(s, (out) => {
        toast(out && out.rollout
          ? `${s.microservice_name} edited: its instances are replaced one at a time.`
          : `${s.microservice_name} edited; nothing restarts.`);
        ctx.refreshNow();
      }),
    }, 'Edit');
  }

  // Deleting a service stops and removes its instances; the application
  // keeps its other services.
  function deleteButton(s) {
    return h('button', {
      type: 'button', class: 'btn btn-danger-quiet btn-sm', dataset: { key: `delete-${s.microserviceID}`, action: 'delete-service' },
      'aria-label': `Delete service ${s.microservice_name}`, onclick: (e) => deleteService(e.currentTarget, s),
    }, 'Delete');
  }

  async function deleteService(btn, s) {
    const ok = await confirmAction({
      title: `Delete service ${s.microservice_name}?`,
      body: 'Its instances are stopped and removed; the application keeps its other services.',
      confirm: 'Delete service',
    });
    if (!ok) return;
    await busy(btn, async () => {
      try {
        await api.del(`/api/service/${api.seg(s.microserviceID)}`, { signal: ctx.signal });
        toast(`Deleted service ${s.microservice_name}.`);
      } catch (err) {
        if (err.name !== 'AbortError') toast(describe(err), { tone: 'error' });
      }
    });
    ctx.refreshNow();
  }

  async function removeInstance(btn, s, i) {
    const ok = await confirmAction({
      title: `Remove instance #${i.instance_number} of ${s.microservice_name}?`,
      body: 'The instance is stopped and removed from its node.',
      confirm: 'Remove instance',
    });
    if (!ok) return;
    await busy(btn, async () => {
      try {
        await api.del(`/api/service/${api.seg(s.microserviceID)}/instance/${i.instance_number}`, { signal: ctx.signal });
        toast(`Removed instance #${i.instance_number} of ${s.microservice_name}.`);
      } catch (err) {
        if (err.name !== 'AbortError') toast(describe(err), { tone: 'error' });
      }
    });
    ctx.refreshNow();
  }

  return {
    title: 'Services',
    refresh,
    unmount: () => {
      logs.close();
      events.close();
    },
  };
}

function short(id) {
  return id.length > 10 ? `${id.slice(0, 8)}…` : id;
}
