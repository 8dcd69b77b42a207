// Users (admins only): list, create, delete, set quotas.
import * as api from '../api.js';
import { Region, field, h, pageHeader, setFieldError, table, time } from '../dom.js';
import { busy, confirmAction, describe, toast } from '../ui.js';

const FIELDS = { username: 'user-name', password: 'user-password', role: 'user-role' };

export function mount(ctx) {
  const list = h('div', null, h('p', { class: 'muted loading' }, 'Loading users…'));
  const region = new Region(list);

  const name = h('input', { name: 'username', autocomplete: 'off', required: true, autocapitalize: 'none', spellcheck: 'false', maxlength: 64 });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const role = h('select', { name: 'role' }, h('option', { value: 'user' }, 'user'), h('option', { value: 'admin' }, 'admin'));
  const formError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create user');
  const form = h('form', {
    class: 'inline-form', novalidate: true, 'aria-labelledby': 'new-user-title',
    onsubmit: (e) => {
      e.preventDefault();
      busy(submit, create);
    },
  },
  field({ id: FIELDS.username, label: 'User name', input: name, hint: 'Letters, digits, _ . -' }),
  field({ id: FIELDS.password, label: 'Password', input: pass, hint: 'At least 8 characters' }),
  field({ id: FIELDS.role, label: 'Role', input: role }),
  h('div', { class: 'inline-form-submit' }, submit),
  formError);

  async function create() {
    Object.values(FIELDS).forEach((id) => setFieldError(form, id, ''));
    formError.hidden = true;
    try {
      const u = await api.post('/api/users/', { json: { username: name.value.trim(), password: pass.value, role: role.value }, signal: ctx.signal });
      toast(`Created user ${u.username}.`);
      form.reset();
      name.focus();
    } catch (err) {
      if (err.name === 'AbortError') return;
      const id = FIELDS[err.field];
      if (!id || !setFieldError(form, id, describe(err))) {
        formError.textContent = describe(err);
        formError.hidden = false;
      }
      form.querySelector(`#${id || FIELDS.username}`).focus();
    }
    ctx.refreshNow();
  }

  const quotaForm = quotaSetter(ctx);
  ctx.main.append(h('div', { class: 'page' },
    pageHeader('Users', { sub: 'Accounts that may log in. Users see their own applications; admins see and manage everything.' }),
    h('section', { class: 'card pad', 'aria-labelledby': 'new-user-title' }, h('h2', { class: 'section-title', id: 'new-user-title' }, 'New user'), form),
    h('section', { class: 'card pad', 'aria-labelledby': 'quota-title' }, h('h2', { class: 'section-title', id: 'quota-title' }, 'Quota'), quotaForm),
    list));

  async function refresh(signal) {
    const users = await api.get('/api/users/', { signal });
    region.update(users, render);
  }

  function render(users) {
    const me = api.current()?.username;
    return h('div', { class: 'card' }, table([
      { label: 'User', cell: (u) => h('span', { class: 'name-cell' }, h('strong', null, u.username), u.username === me ? h('span', { class: 'chip' }, 'you') : null) },
      { label: 'Role', cell: (u) => h('span', { class: ['chip', u.role === 'admin' ? 'chip-accent' : null] }, u.role) },
      { label: 'Quota', cell: (u) => quotaCell(u.quota), class: 'wrap' },
      { label: 'Created', cell: (u) => time(u.created_at) },
      {
        label: 'Actions',
        class: 'actions',
        cell: (u) => (u.username === me ? '' : h('button', {
          type: 'button', class: 'btn btn-danger-quiet btn-sm', dataset: { key: `del-${u.username}`, action: 'delete-user' },
          'aria-label': `Delete user ${u.username}`,
          onclick: (e) => remove(e.currentTarget, u),
        }, 'Delete')),
      },
    ], users, { caption: 'Users', rowKey: (u) => u.username }));
  }

  async function remove(btn, u) {
    const ok = await confirmAction({ title: `Delete user ${u.username}?`, body: 'The account is removed and its tokens stop working. A user who still owns applications cannot be deleted.', confirm: 'Delete user' });
    if (!ok) return;
    await busy(btn, async () => {
      try {
        await api.del(`/api/user/${api.seg(u.username)}`, { signal: ctx.signal });
        toast(`Deleted user ${u.username}.`);
      } catch (err) {
        if (err.name !== 'AbortError') toast(describe(err), { tone: 'error' });
      }
    });
    ctx.refreshNow();
  }

  return { title: 'Users', refresh };
}

/** quotaCell shows a user's quota ("none" without one; 0 is no bound). */
function quotaCell(q) {
  if (!q) return h('span', { class: 'muted' }, 'none');
  const parts = [[q.instances, ' instances'], [q.milli_cpu, ' mCPU'], [q.memory_mb, ' MiB']]
    .filter(([v]) => v > 0).map(([v, unit]) => `${v}${unit}`);
  return parts.length ? parts.join(' · ') : h('span', { class: 'muted' }, 'none');
}

const QUOTA_FIELDS = { username: 'quota-user', instances: 'quota-instances', milli_cpu: 'quota-cpu', memory_mb: 'quota-memory' };

/** quotaSetter is the form that sets a user's quota (PUT /api/users/{name}/quota). */
function quotaSetter(ctx) {
  const num = (name) => h('input', { name, type: 'number', min: 0, step: 1, value: 0, inputmode: 'numeric' });
  const user = h('input', { name: 'username', autocomplete: 'off', required: true, autocapitalize: 'none', spellcheck: 'false', maxlength: 64 });
  const inputs = { instances: num('instances'), milli_cpu: num('milli_cpu'), memory_mb: num('memory_mb') };
  const formError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'quota-submit' }, 'Set quota');
  const form = h('form', {
    class: 'inline-form', novalidate: true, 'aria-labelledby': 'quota-title',
    onsubmit: (e) => {
      e.preventDefault();
      busy(submit, save);
    },
  },
  field({ id: QUOTA_FIELDS.username, label: 'User name', input: user }),
  field({ id: QUOTA_FIELDS.instances, label: 'Instances', input: inputs.instances, hint: '0: no bound' }),
  field({ id: QUOTA_FIELDS.milli_cpu, label: 'CPU (millicores)', input: inputs.milli_cpu, hint: 'vcpus × 1000 per instance' }),
  field({ id: QUOTA_FIELDS.memory_mb, label: 'Memory (MiB)', input: inputs.memory_mb, hint: 'All 0 removes the quota' }),
  h('div', { class: 'inline-form-submit' }, submit),
  formError);

  async function save() {
    Object.values(QUOTA_FIELDS).forEach((id) => setFieldError(form, id, ''));
    formError.hidden = true;
    const name = user.value.trim();
    try {
      const body = {};
      for (const [k, input] of Object.entries(inputs)) body[k] = Number(input.value || 0);
      await api.put(`/api/users/${api.seg(name)}/quota`, { json: body, signal: ctx.signal });
      toast(`Set the quota of ${name}.`);
    } catch (err) {
      if (err.name === 'AbortError') return;
      const id = QUOTA_FIELDS[err.field];
      if (!id || !setFieldError(form, id, describe(err))) {
        formError.textContent = err.status === 404 ? `No user ${name}.` : describe(err);
        formError.hidden = false;
      }
    }
    ctx.refreshNow();
  }
  return form;
}
