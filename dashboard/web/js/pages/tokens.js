// Cluster join tokens (admins only): list with their state, create (the
// secret is shown once; expiry, single use, a cluster name), revoke. The
// ready-to-run command is shown only while its token is active. The list
// follows the live stream's join_token changes, and is refreshed when the
// next token expires.
import * as api from '../api.js';
import { Region, empty, field, h, pageHeader, setFieldError, table, time } from '../dom.js';
import { busy, confirmAction, describe, toast } from '../ui.js';
import { expiresSelect, installCommand, nextExpiry, secretRow } from '../secret.js';

export function mount(ctx) {
  const list = h('div', null, h('p', { class: 'muted loading' }, 'Loading tokens…'));
  const region = new Region(list);
  const reveal = h('div', { class: 'token-reveal-slot', 'aria-live': 'polite' });

  const name = h('input', { name: 'name', autocomplete: 'off', maxlength: 100, placeholder: 'e.g. site-munich' });
  const expires = expiresSelect();
  const clusterName = h('input', { name: 'cluster_name', autocomplete: 'off', maxlength: 64, placeholder: 'any' });
  const singleUse = h('input', { type: 'checkbox', name: 'single_use', id: 'token-single-use' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create token');
  const form = h('form', {
    class: 'inline-form', novalidate: true,
    onsubmit: (e) => {
      e.preventDefault();
      busy(submit, create);
    },
  },
  field({ id: 'token-name', label: 'Name (optional)', input: name, hint: 'Helps you tell tokens apart' }),
  field({ id: 'token-expires', label: 'Expires after', input: expires }),
  field({ id: 'token-cluster', label: 'Only for cluster (optional)', input: clusterName, hint: 'Also lets that cluster rejoin after losing its data dir' }),
  h('div', { class: 'field' }, h('label', { class: 'check' }, singleUse, ' Single use')),
  h('div', { class: 'inline-form-submit' }, submit));
  let shown = null; // the token whose command is on screen

  async function create() {
    setFieldError(form, 'token-name', '');
    try {
      const body = { expires_in: expires.value, single_use: singleUse.checked };
      if (name.value.trim()) body.name = name.value.trim();
      if (clusterName.value.trim()) body.cluster_name = clusterName.value.trim();
      const t = await api.post('/api/clusters/tokens', { json: body, signal: ctx.signal });
      form.reset();
      showOnce(t);
    } catch (err) {
      if (err.name === 'AbortError') return;
      const fieldId = err.field === 'cluster_name' ? 'token-cluster' : err.field === 'expires_in' ? 'token-expires' : 'token-name';
      setFieldError(form, fieldId, describe(err));
      (fieldId === 'token-cluster' ? clusterName : fieldId === 'token-expires' ? expires : name).focus();
    }
    ctx.refreshNow();
  }

  function showOnce(t) {
    const { input, row } = secretRow('new-token', 'Join token', t.token);
    // The token goes into a file, not onto a command line (ps, shell history).
    // Over HTTPS the command first checks the root's CA against the pin
    // the token carries (thk1<pin>::…), then trusts that CA only.
    const pin = /^thk1([0-9a-f]{64})::/.exec(t.token);
    const args = `--token-file cluster-join-token --name ${t.cluster_name || '<cluster-name>'}`;
    const install = installCommand(pin && pin[1], 'cluster.sh', args);
    const cmd = `umask 077; cat > cluster-join-token   # paste the token, then Ctrl+D\n` + install;
    const limits = [t.expires_at ? `It expires ${time(t.expires_at)}.` : 'It never expires.',
      t.single_use ? 'It registers one cluster.' : '', t.cluster_name ? `Only a cluster named ${t.cluster_name} can use it.` : ''].filter(Boolean).join(' ');
    shown = t.id;
    reveal.replaceChildren(h('div', { class: 'token-reveal card pad', role: 'region', 'aria-labelledby': 'new-token-title' },
      h('div', { class: 'token-reveal-head' },
        h('h2', { class: 'section-title', id: 'new-token-title' }, `New join token ${t.name ? `“${t.name}”` : t.id}`),
        h('button', { type: 'button', class: 'btn btn-quiet btn-icon', 'aria-label': 'Hide the token', onclick: () => { shown = null; reveal.replaceChildren(); } }, '×')),
      h('p', null, h('strong', null, 'Copy it now: it is shown only this once.'), ' The root keeps only its hash. ', limits),
      row,
      h('p', { class: 'muted small' }, 'On the cluster\'s machine, save it in a file and start the cluster with it:'),
      h('pre', { class: 'cmd' }, cmd)));
    input.focus();
  }

  ctx.main.append(h('div', { class: 'page' },
    pageHeader('Join tokens', { sub: 'A cluster joins this root with a join token, then gets credentials of its own. Tokens expire (24 hours unless you choose otherwise); revoking one does not affect clusters that already joined.' }),
    h('section', { class: 'card pad', 'aria-labelledby': 'new-token-h' }, h('h2', { class: 'section-title', id: 'new-token-h' }, 'New token'), form),
    reveal,
    list));

  async function refresh(signal) {
    const tokens = await api.get('/api/clusters/tokens', { signal });
    region.update(tokens, render);
    const expiry = nextExpiry(tokens);
    if (expiry !== null) ctx.refreshAt(expiry);
  }

  function render(tokens) {
    if (shown) {
      // A command for a token that no longer works is not left on screen.
      const t = tokens.find((x) => x.id === shown);
      if (!t || t.state !== 'active') {
        reveal.replaceChildren(h('p', { class: 'card pad muted', role: 'status' },
          `Join token ${shown} is ${t ? t.state : 'revoked'}: its command was removed.`));
        shown = null;
      }
    }
    if (!tokens.length) return h('div', { class: 'card' }, empty('No join tokens.', 'Create one to let a cluster join.'));
    return h('div', { class: 'card' }, table([
      { label: 'Id', cell: (t) => h('code', null, t.id) },
      { label: 'Name', cell: (t) => t.name },
      { label: 'State', cell: (t) => h('span', { class: `chip token-${t.state}`, dataset: { state: t.state } }, t.state) },
      { label: 'Expires', cell: (t) => (t.expires_at ? time(t.expires_at) : 'never') },
      { label: 'Use', cell: (t) => [t.single_use ? (t.used_by ? `single, used by ${t.used_by}` : 'single') : 'multiple', t.cluster_name ? ` · only ${t.cluster_name}` : ''].join('') },
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
    const ok = await confirmAction({ title: `Revoke token ${t.name || t.id}?`, body: 'It stops working at once: no new cluster can join with it. Clusters that joined with it keep working.', confirm: 'Revoke token' });
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
