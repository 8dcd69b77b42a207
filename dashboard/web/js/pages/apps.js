// Applications: the list, deploying from an SLA, deleting.
import * as api from '../api.js';
import { Region, badge, empty, h, pageHeader, table, time } from '../dom.js';
import { busy, confirmAction, describe, toast } from '../ui.js';
import { SLAEditor } from '../sla-editor.js';

const EXAMPLE = {
  sla_version: 'v2.0',
  customerID: '',
  applications: [{
    applicationID: '',
    application_name: 'demo',
    application_namespace: 'test',
    application_desc: 'A single Nginx server',
    microservices: [{
      microserviceID: '',
      microservice_name: 'nginx',
      microservice_namespace: 'test',
      virtualization: 'container',
      cmd: [],
      memory: 100,
      vcpus: 1,
      vgpus: 0,
      vtpus: 0,
      bandwidth_in: 0,
      bandwidth_out: 0,
      storage: 0,
      code: 'docker.io/library/nginx:latest',
      state: '',
      port: '80:80/tcp',
      added_files: [],
      constraints: [],
    }],
  }],
};

// OAM tells an OAM manifest from an SLA: it declares an apiVersion.
const OAM = /(^|[{,\s])["']?apiVersion["']?\s*:/m;
// DEFINITION tells a ComponentDefinition from an Application.
const DEFINITION = /^\s*["']?kind["']?\s*:\s*["']?ComponentDefinition\b/m;

// documents splits a YAML stream at its "---" lines.
function documents(text) {
  return text.split(/^---[ \t]*(?:#.*)?\r?$/m).filter((d) => d.trim() !== '');
}

export function mount(ctx) {
  const list = h('section', { class: 'stack', 'aria-label': 'Applications' }, h('p', { class: 'muted loading' }, 'Loading applications…'));
  const region = new Region(list);
  const fresh = new Set(); // ids deployed from this page, highlighted for a moment

  // --- the deploy form ---
  const editor = new SLAEditor({ id: 'sla-input' });
  const startBox = h('input', { type: 'checkbox', id: 'sla-start', checked: true });
  const fileInput = h('input', { type: 'file', id: 'sla-file', accept: '.json,.yaml,.yml,application/json,application/yaml', class: 'sr-only' });
  const deployBtn = h('button', { type: 'submit', class: 'btn btn-primary', id: 'sla-deploy' }, 'Deploy');
  const toggle = h('button', {
    type: 'button', class: 'btn btn-primary', id: 'new-app', 'aria-expanded': 'false', 'aria-controls': 'deploy-panel',
    onclick: () => setOpen(panel.hidden),
  }, 'New application');

  fileInput.addEventListener('change', async () => {
    const f = fileInput.files && fileInput.files[0];
    if (!f) return;
    editor.setText(await f.text());
    fileInput.value = '';
    editor.focus();
  });

  const form = h('form', {
    class: 'deploy-form', novalidate: true,
    onsubmit: (e) => {
      e.preventDefault();
      busy(deployBtn, deploy);
    },
  },
  editor.el,
  h('div', { class: 'form-row' },
    h('div', { class: 'form-row-start' },
      h('label', { class: 'btn btn-secondary file-btn', for: 'sla-file' }, 'Load from file…'),
      fileInput,
      h('button', { type: 'button', class: 'btn btn-quiet', onclick: () => { editor.setText(JSON.stringify(EXAMPLE, null, 2)); editor.focus(); } }, 'Insert example')),
    h('div', { class: 'form-row-end' },
      h('label', { class: 'check' }, startBox, ' Start one instance of each service (of an SLA)'),
      h('button', { type: 'button', class: 'btn btn-secondary', onclick: () => setOpen(false) }, 'Cancel'),
      deployBtn)));

  const panel = h('section', { class: 'card pad deploy-panel', id: 'deploy-panel', hidden: true, 'aria-labelledby': 'deploy-title' },
    h('h2', { class: 'section-title', id: 'deploy-title' }, 'Deploy from an SLA or an OAM manifest'),
    h('p', { class: 'muted' }, 'Paste an SLA (version 2.0, JSON) or an OAM Application manifest (core.oam.dev/v1beta1, YAML or JSON), or load it from a file. Either all of its applications are created or none; an OAM manifest\'s traits say how many instances start. OAM ComponentDefinitions (several separated by ---, optionally followed by one Application) are registered first.'),
    form);

  function setOpen(open, moveFocus = true) {
    panel.hidden = !open;
    if (!open) editor.clearProblems(); // Cancel: reopened, the form shows no old errors
    toggle.setAttribute('aria-expanded', String(open));
    if (!moveFocus) return;
    if (open) editor.focus();
    else toggle.focus();
  }

  async function deploy() {
    editor.clearProblems();
    const text = editor.text();
    if (!text.trim()) {
      editor.showProblems('Paste an SLA or load one from a file.', '');
      editor.focus();
      return;
    }
    if (OAM.test(text)) {
      // ComponentDefinitions first, then the Application, if any.
      const docs = documents(text);
      const defs = docs.filter((d) => DEFINITION.test(d));
      const apps = docs.filter((d) => !DEFINITION.test(d));
      if (apps.length > 1) {
        editor.showProblems(`The text holds ${apps.length} Applications: deploy one at a time.`, '');
        return;
      }
      const registered = [];
      for (const d of defs) {
        const def = await submit('/api/oam/componentdefinitions', d);
        if (!def) return;
        registered.push(def.name);
      }
      if (!apps.length) {
        toast(`Registered component definition${registered.length === 1 ? '' : 's'} ${registered.join(', ')}.`);
        editor.setText('');
        setOpen(false);
        ctx.refreshNow();
        return;
      }
      const app = await submit('/api/oam/applications', apps[0]);
      if (!app) return;
      if (registered.length) toast(`Registered component definition${registered.length === 1 ? '' : 's'} ${registered.join(', ')}.`);
      // The root starts the instances, step by step.
      const instances = app.components.reduce((n, c) => n + c.replicas, 0);
      deployed([app.applicationID], `Deployed OAM application ${app.name} · ${instances} instance${instances === 1 ? '' : 's'} requested.`);
      return;
    }
    const apps = await submit('/api/application/', text);
    if (!apps) return;
    const created = newApps(text, apps);
    let instances = 0;
    let failed = '';
    if (startBox.checked) {
      for (const a of created) {
        for (const sid of a.microservices || []) {
          try {
            await api.post(`/api/service/${api.seg(sid)}/instance`, { signal: ctx.signal });
            instances++;
          } catch (err) {
            if (err.name === 'AbortError') return;
            failed = describe(err);
          }
        }
      }
    }
    const names = created.map((a) => a.application_name).join(', ') || 'the SLA';
    deployed(created.map((a) => a.applicationID),
      `Deployed ${names}${startBox.checked ? ` · ${instances} instance${instances === 1 ? '' : 's'} requested` : ''}.`);
    if (failed) toast(`Could not request every instance: ${failed}`, { tone: 'error' });
  }

  // submit posts the editor's text; a refusal is shown in the editor, and
  // it returns null.
  async function submit(path, text) {
    try {
      return await api.post(path, { text, signal: ctx.signal });
    } catch (err) {
      if (err.name === 'AbortError') return null;
      if (err.name === 'ApiError' && err.status !== 401) editor.showProblems(err.message, err.field, err.status);
      else toast(describe(err), { tone: 'error' });
      return null;
    }
  }

  // deployed highlights the new applications for a moment, says so and
  // closes the form.
  function deployed(ids, message) {
    ids.forEach((id) => fresh.add(id));
    setTimeout(() => {
      ids.forEach((id) => fresh.delete(id));
      region.reset();
      ctx.refreshNow();
    }, 4000);
    toast(message);
    editor.setText('');
    setOpen(false);
    region.reset();
    ctx.refreshNow();
  }

  // The caller's OAM ComponentDefinitions, when there are any.
  const defsList = h('section', { class: 'stack', 'aria-label': 'Component definitions', id: 'component-definitions' });
  const defsRegion = new Region(defsList);

  const quotaLine = h('p', { class: 'muted quota-line', id: 'quota-line', hidden: true });
  ctx.main.append(h('div', { class: 'page' },
    pageHeader('Applications', { sub: 'Deploy applications from an SLA, then watch and scale their services.', actions: toggle }),
    quotaLine,
    panel,
    list,
    defsList));

  async function refresh(signal) {
    const [apps, types, quota] = await Promise.all([
      api.get('/api/applications/', { signal }),
      api.get('/api/oam/componentdefinitions', { signal }),
      api.get('/api/quota', { signal }).catch((err) => { if (err.name === 'AbortError') throw err; return null; }),
    ]);
    const text = quotaText(quota);
    quotaLine.textContent = text;
    quotaLine.hidden = !text;
    region.update({ apps, fresh: [...fresh] }, render);
    defsRegion.update({ defs: types.filter((t) => t.kind === 'definition') }, renderDefs);
    if (apps.length === 0 && panel.hidden && !opened) {
      opened = true;
      setOpen(true, false);
    }
  }
  let opened = false;

  function render({ apps }) {
    if (!apps.length) {
      return h('div', { class: 'card' }, empty('No applications yet', 'Deploy one from an SLA: paste it above, or load it from a file.'));
    }
    const showOwner = api.isAdmin();
    return h('div', { class: 'card' }, table([
      {
        label: 'Application',
        cell: (a) => h('div', { class: 'name-cell' },
          h('a', { href: `#/apps/${encodeURIComponent(a.applicationID)}`, class: 'strong-link', dataset: { key: `open-${a.applicationID}` } }, a.application_name),
          h('span', { class: 'chip' }, a.application_namespace)),
      },
      {
        label: 'Status',
        cell: (a) => h('div', { class: 'service-status', title: a.status_detail || '' }, badge(a.status),
          a.desired_instances ? h('span', { class: 'muted' }, `${a.running_instances}/${a.desired_instances} running`) : null),
      },
      { label: 'Description', cell: (a) => a.application_desc, class: 'wrap' },
      showOwner ? { label: 'Owner', cell: (a) => a.userId } : null,
      { label: 'Services', cell: (a) => String((a.microservices || []).length), class: 'num' },
      { label: 'Created', cell: (a) => time(a.created_at) },
      {
        label: 'Actions',
        class: 'actions',
        cell: (a) => h('div', { class: 'btn-row' },
          h('a', { class: 'btn btn-secondary btn-sm', href: `#/apps/${encodeURIComponent(a.applicationID)}`, 'aria-label': `Services of ${a.application_name}`, dataset: { key: `svc-${a.applicationID}` } }, 'Services'),
          h('button', {
            type: 'button', class: 'btn btn-danger-quiet btn-sm', 'aria-label': `Delete application ${a.application_name}`,
            dataset: { key: `del-${a.applicationID}`, action: 'delete-app' },
            onclick: (e) => remove(e.currentTarget, a),
          }, 'Delete')),
      },
    ].filter(Boolean), apps, {
      caption: 'Applications',
      rowKey: (a) => a.applicationID,
      rowClass: (a) => (fresh.has(a.applicationID) ? 'is-new' : null),
    }));
  }

  function renderDefs({ defs }) {
    if (!defs.length) return null;
    return h('div', { class: 'card' },
      h('h2', { class: 'section-title pad' }, 'Component definitions'),
      table([
        { label: 'Definition', cell: (d) => h('span', { class: 'strong', title: d.description || '' }, d.name) },
        { label: 'Base component', cell: (d) => h('code', null, d.base_component) },
        { label: 'Workload', cell: (d) => d.workload },
        { label: 'Virtualization', cell: (d) => d.virtualization },
        { label: 'Arch', cell: (d) => (d.arch || []).join(', ') || 'any' },
        { label: 'Image', cell: (d) => h('code', { title: d.sha256 ? `sha256:${d.sha256}` : '' }, d.image), class: 'wrap' },
        {
          label: 'Actions',
          class: 'actions',
          cell: (d) => h('button', {
            type: 'button', class: 'btn btn-danger-quiet btn-sm', 'aria-label': `Delete component definition ${d.name}`,
            dataset: { key: `del-def-${d.name}`, action: 'delete-definition' },
            onclick: (e) => removeDef(e.currentTarget, d),
          }, 'Delete'),
        },
      ], defs, { caption: 'Component definitions', rowKey: (d) => d.name }));
  }

  async function removeDef(btn, d) {
    const ok = await confirmAction({
      title: `Delete ${d.name}?`,
      body: `The component definition ${d.name} is no longer an implementation of ${d.base_component}. Applications deployed with it keep running as they are.`,
      confirm: 'Delete definition',
    });
    if (!ok) return;
    await busy(btn, async () => {
      try {
        await api.del(`/api/oam/componentdefinitions/${api.seg(d.name)}`, { signal: ctx.signal });
        toast(`Deleted ${d.name}.`);
      } catch (err) {
        if (err.name !== 'AbortError') toast(describe(err), { tone: 'error' });
      }
    });
    ctx.refreshNow();
  }

  async function remove(btn, a) {
    const n = (a.microservices || []).length;
    const ok = await confirmAction({
      title: `Delete ${a.application_name}?`,
      body: `The application ${a.application_name} (${a.application_namespace}) and its ${n} service${n === 1 ? '' : 's'} are deleted, and every instance is stopped.`,
      confirm: 'Delete application',
    });
    if (!ok) return;
    await busy(btn, async () => {
      try {
        await api.del(`/api/application/${api.seg(a.applicationID)}`, { signal: ctx.signal });
        toast(`Deleted ${a.application_name}.`);
      } catch (err) {
        if (err.name !== 'AbortError') toast(describe(err), { tone: 'error' });
      }
    });
    ctx.refreshNow();
  }

  return { title: 'Applications', refresh, unmount: () => editor.destroy() };
}

// newApps picks the applications an SLA created out of the caller's list,
// by name and namespace (unique per user).
function newApps(text, apps) {
  let wanted = [];
  try {
    wanted = (JSON.parse(text).applications || []).map((a) => `${a.application_name}\u0000${a.application_namespace}`);
  } catch {
    return [];
  }
  return (apps || []).filter((a) => wanted.includes(`${a.application_name}\u0000${a.application_namespace}`));
}

/** quotaText is the caller's quota line ("" without a quota). */
function quotaText(q) {
  if (!q || !q.quota) return '';
  const parts = [
    ['instances', q.used.instances, q.quota.instances, ''],
    ['CPU', q.used.milli_cpu, q.quota.milli_cpu, ' mCPU'],
    ['memory', q.used.memory_mb, q.quota.memory_mb, ' MiB'],
  ].filter(([, , limit]) => limit > 0).map(([what, used, limit, unit]) => `${what} ${used} of ${limit}${unit}`);
  return parts.length ? `Your quota: ${parts.join(' · ')}` : '';
}
