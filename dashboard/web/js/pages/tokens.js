// Cluster join tokens (admins only): list, create (the secret is shown
// once), revoke.
import * as api from '../api.js';
import { Region, empty, field, h, pageHeader, setFieldError, table, time } from '../dom.js';
import { busy, confirmAction, describe, toast } from '../ui.js';

export function mount(ctx) {
  const list = h('div', null, h('p', { class: 'muted loading' }, 'Loading tokens…'));
  const region = new Region(list);
  const reveal = h('div', { class: 'token-reveal-slot', 'aria-live': 'polite' });

  const name = h('input', { name: 'name', autocomplete: 'off', maxlength: 100, placeholder: 'e.g. site-munich' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create token');
  const form = h('form', {
    class: 'inline-form', novalidate: true,
    onsubmit: (e) => {
      e.preventDefault();
      busy(submit, create);
    },
  },
  field({ id: 'token-name', label: 'Name (optional)', input: name, hint: 'Helps you tell tokens apart' }),
  h('div', { class: 'inline-form-submit' }, submit));

  async function create() {
    setFieldError(form, 'token-name', '');
    try {
      const t = await api.post('/api/clusters/tokens', { json: name.value.trim() ? { name: name.value.trim() } : {}, signal: ctx.signal });
      form.reset();
      showOnce(t);
    } catch (err) {
      if (err.name === 'AbortError') return;
      setFieldError(form, 'token-name', describe(err));
      name.focus();
    }
    ctx.refreshNow();
  }

  function showOnce(t) {
    const input = h('input', { class: 'token-value', id: 'new-token', readOnly: true, value: t.token, spellcheck: 'false', onfocus: (e) => e.target.select() });
    const copied = h('span', { class: 'muted small', role: 'status' });
    const copy = h('button', {
      type: 'button', class: 'btn btn-secondary',
      onclick: async () => {
        input.focus();
        input.select();
        try {
          await navigator.clipboard.writeText(t.token);
          copied.textContent = 'Copied.';
        } catch {
          copied.textContent = 'Press Ctrl+C (or ⌘C) to copy.';
        }
      },
    }, 'Copy');
    // The token goes into a file, not onto a command line (ps, shell history).
    const cmd = `umask 077; cat > cluster-join-token   # paste the token, then Ctrl+D\n` +
      `curl -sfL ${location.origin}/install/cluster.sh | sh -s -- --token-file cluster-join-token --name <cluster-name>`;
    reveal.replaceChildren(h('div', { class: 'token-reveal card pad', role: 'region', 'aria-labelledby': 'new-token-title' },
      h('div', { class: 'token-reveal-head' },
        h('h2', { class: 'section-title', id: 'new-token-title' }, `New join token ${t.name ? `“${t.name}”` : t.id}`),
        h('button', { type: 'button', class: 'btn btn-quiet btn-icon', 'aria-label': 'Hide the token', onclick: () => reveal.replaceChildren() }, '×')),
      h('p', null, h('strong', null, 'Copy it now: it is shown only this once.'), ' The root keeps only its hash.'),
      h('div', { class: 'token-row' }, h('label', { class: 'sr-only', for: 'new-token' }, 'Join token'), input, copy, copied),
      h('p', { class: 'muted small' }, 'On the cluster\'s machine, save it in a file and start the cluster with it:'),
      h('pre', { class: 'cmd' }, cmd)));
    input.focus();
  }

  ctx.main.append(h('div', { class: 'page' },
    pageHeader('Join tokens', { sub: 'A cluster joins this root with a join token, then gets credentials of its own. Revoking a token does not affect clusters that already joined.' }),
    h('section', { class: 'card pad', 'aria-labelledby': 'new-token-h' }, h('h2', { class: 'section-title', id: 'new-token-h' }, 'New token'), form),
    reveal,
    list));

  async function refresh(signal) {
    const tokens = await api.get('/api/clusters/tokens', { signal });
    region.update(tokens, render);
  }

  function render(tokens) {
    if (!tokens.length) return h('div', { class: 'card' }, empty('No join tokens.', 'Create one to let a cluster join.'));
    return h('div', { class: 'card' }, table([
      { label: 'Id', cell: (t) => h('code', null, t.id) },
      { label: 'Name', cell: (t) => t.name },
      { label: 'Created', cell: (t) => time(t.created_at) },
      {
        label: 'Actions',
        class: 'actions',
        cell: (t) => h('button', {
          type: 'button', class: 'btn btn-danger-quiet btn-sm', dataset: { key: `revoke-${t.id}`, action: 'revoke-token' },
          'aria-label': `Revoke token ${t.name || t.id}`,
          onclick: (e) => revoke(e.currentTarget, t),
        }, 'Revoke'),
      },
    ], tokens, { caption: 'Join tokens', rowKey: (t) => t.id }));
  }

  async function revoke(btn, t) {
    const ok = await confirmAction({ title: `Revoke token ${t.name || t.id}?`, body: 'No new cluster can join with it. Clusters that joined with it keep working.', confirm: 'Revoke token' });
    if (!ok) return;
    await busy(btn, async () => {
      try {
        await api.del(`/api/clusters/tokens/${api.seg(t.id)}`, { signal: ctx.signal });
        toast(`Revoked token ${t.name || t.id}.`);
      } catch (err) {
        if (err.name !== 'AbortError') toast(describe(err), { tone: 'error' });
      }
    });
    ctx.refreshNow();
  }

  return { title: 'Join tokens', refresh };
}
