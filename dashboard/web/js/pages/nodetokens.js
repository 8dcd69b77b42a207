// A cluster's node join tokens (admins only): the root issues them for the
// cluster (expiry, single use, a node name), the cluster admits nodes by
// them. List with their state, create (the secret and the worker.sh
// command are shown once, while the token is active), revoke.
import * as api from '../api.js';
import { Region, empty, field, h, pageHeader, setFieldError, table, time } from '../dom.js';
import { busy, confirmAction, describe, toast } from '../ui.js';
import { expiresSelect, installCommand, nextExpiry, secretRow } from '../secret.js';

export function mount(ctx) {
  const cluster = ctx.params.clusterId;
  const base = `/api/clusters/${api.seg(cluster)}/node-tokens`;
  const list = h('div', null, h('p', { class: 'muted loading' }, 'Loading tokens…'));
  const region = new Region(list);
  const reveal = h('div', { class: 'token-reveal-slot', 'aria-live': 'polite' });

  const expires = expiresSelect();
  const nodeName = h('input', { name: 'node_name', autocomplete: 'off', maxlength: 64, placeholder: 'any' });
  const singleUse = h('input', { type: 'checkbox', name: 'single_use', id: 'node-token-single-use' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create token');
  const form = h('form', {
    class: 'inline-form', novalidate: true,
    onsubmit: (e) => {
      e.preventDefault();
      busy(submit, create);
    },
  },
  field({ id: 'node-token-expires', label: 'Expires after', input: expires }),
  field({ id: 'node-token-node', label: 'Only for node (optional)', input: nodeName }),
  h('div', { class: 'field' }, h('label', { class: 'check' }, singleUse, ' Single use')),
  h('div', { class: 'inline-form-submit' }, submit));
  let shown = null; // the token whose command is on screen

  async function create() {
    setFieldError(form, 'node-token-node', '');
    try {
      const body = { expires_in: expires.value, single_use: singleUse.checked };
      if (nodeName.value.trim()) body.node_name = nodeName.value.trim();
      const t = await api.post(base, { json: body, signal: ctx.signal });
      form.reset();
      await showOnce(t);
    } catch (err) {
      if (err.name === 'AbortError') return;
      const fieldId = err.field === 'expires_in' ? 'node-token-expires' : 'node-token-node';
      setFieldError(form, fieldId, describe(err));
      (fieldId === 'node-token-expires' ? expires : nodeName).focus();
    }
    ctx.refreshNow();
  }

  // rootPin is the pin of the root's CA (sha256 of /ca.crt's DER), so that
  // the worker checks the root it downloads from; null without HTTPS.
  async function rootPin() {
    if (location.protocol !== 'https:' || !crypto.subtle) return null;
    try {
      const pem = await (await fetch('/ca.crt', { signal: ctx.signal })).text();
      const b64 = pem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
      const der = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const sum = new Uint8Array(await crypto.subtle.digest('SHA-256', der));
      return Array.from(sum, (b) => b.toString(16).padStart(2, '0')).join('');
    } catch {
      return null;
    }
  }

  async function showOnce(t) {
    const { input, row } = secretRow('new-node-token', 'Node join token', t.token);
    // The token goes into a file, not onto a command line (ps, shell
    // history). The worker checks the root's CA against its pin before it
    // downloads anything; thicket-node checks the cluster's CA against the
    // pin the token carries.
    const pin = await rootPin();
    const args = `--cluster-url ${t.cluster_url || 'https://CLUSTER:10100'} --token-file node-join-token${t.node_name ? ` --name ${t.node_name}` : ''}`;
    const install = installCommand(pin, 'worker.sh', args);
    const cmd = `umask 077; cat > node-join-token   # paste the token, then Ctrl+D\n` + install;
    const limits = [t.expires_at ? `It expires ${time(t.expires_at)}.` : 'It never expires.',
      t.single_use ? 'It admits one node.' : '', t.node_name ? `Only a node named ${t.node_name} can use it.` : '',
      t.pinned ? '' : 'The cluster has not told its CA pin yet: the token carries none, and nodes cannot verify the cluster with it.'].filter(Boolean).join(' ');
    shown = t.id;
    reveal.replaceChildren(h('div', { class: 'token-reveal card pad', role: 'region', 'aria-labelledby': 'new-node-token-title' },
      h('div', { class: 'token-reveal-head' },
        h('h2', { class: 'section-title', id: 'new-node-token-title' }, `New node join token ${t.id}`),
        h('button', { type: 'button', class: 'btn btn-quiet btn-icon', 'aria-label': 'Hide the token', onclick: () => { shown = null; reveal.replaceChildren(); } }, '×')),
      h('p', null, h('strong', null, 'Copy it now: it is shown only this once.'), ' The root keeps only its hash. ', limits),
      row,
      h('p', { class: 'muted small' }, 'On the worker, save it in a file and run the installer with it:'),
      h('pre', { class: 'cmd', dataset: { role: 'worker-command' } }, cmd)));
    input.focus();
  }

  ctx.main.append(h('div', { class: 'page' },
    pageHeader(`Node join tokens of ${cluster}`, {
      crumbs: [h('a', { href: '#/infra' }, 'Infrastructure'), h('span', { 'aria-hidden': 'true' }, ' / '), h('span', { 'aria-current': 'page' }, `${cluster}: node tokens`)],
      sub: 'A worker joins this cluster with a node join token, then gets credentials of its own. Tokens expire (24 hours unless you choose otherwise); revoking one stops new joins within seconds and does not affect nodes that already joined. The cluster\'s own token in its data dir (node-join-token) works too.',
    }),
    h('section', { class: 'card pad', 'aria-labelledby': 'new-node-token-h' }, h('h2', { class: 'section-title', id: 'new-node-token-h' }, 'New token'), form),
    reveal,
    list));

  async function refresh(signal) {
    const tokens = await api.get(base, { signal });
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
          `Node join token ${shown} is ${t ? t.state : 'revoked'}: its command was removed.`));
        shown = null;
      }
    }
    if (!tokens.length) return h('div', { class: 'card' }, empty('No node join tokens.', 'Create one to let a worker join this cluster.'));
    return h('div', { class: 'card' }, table([
      { label: 'Id', cell: (t) => h('code', null, t.id) },
      { label: 'State', cell: (t) => h('span', { class: `chip token-${t.state}`, dataset: { state: t.state } }, t.state) },
      { label: 'Expires', cell: (t) => (t.expires_at ? time(t.expires_at) : 'never') },
      { label: 'Use', cell: (t) => [t.single_use ? (t.used_by ? `single, used by ${t.used_by}` : 'single') : 'multiple', t.node_name ? ` · only ${t.node_name}` : ''].join('') },
      { label: 'Created', cell: (t) => time(t.created_at) },
      {
        label: 'Actions',
        class: 'actions',
        cell: (t) => h('button', {
          type: 'button', class: 'btn btn-danger-quiet btn-sm', dataset: { key: `revoke-${t.id}`, action: 'revoke-node-token' },
          'aria-label': `Revoke node token ${t.id}`,
          onclick: (e) => revoke(e.currentTarget, t),
        }, 'Revoke'),
      },
    ], tokens, { caption: `Node join tokens of ${cluster}`, rowKey: (t) => t.id }));
  }

  async function revoke(btn, t) {
    const ok = await confirmAction({ title: `Revoke node token ${t.id}?`, body: 'The cluster admits no new node with it within seconds. Nodes that joined with it keep working.', confirm: 'Revoke token' });
    if (!ok) return;
    await busy(btn, async () => {
      try {
        await api.del(`${base}/${api.seg(t.id)}`, { signal: ctx.signal });
        toast(`Revoked node token ${t.id}.`);
      } catch (err) {
        if (err.name !== 'AbortError') toast(describe(err), { tone: 'error' });
      }
    });
    ctx.refreshNow();
  }

  return { title: `Node tokens of ${cluster}`, refresh };
}
