// What the join token pages share: the lifetime choice, when the next token
// expires, a secret shown once with a Copy button, and the command that runs
// one of the root's install scripts on another machine (over HTTPS it first
// checks the root's CA against its pin, then trusts that CA only).
import { h } from './dom.js';

/**
 * nextExpiry is in how many ms the first of the active tokens expires (no
 * change of the live stream says so), or null when none will.
 */
export function nextExpiry(tokens) {
  const at = tokens.filter((t) => t.state === 'active' && t.expires_at).map((t) => Date.parse(t.expires_at));
  return at.length ? Math.min(...at) - Date.now() : null;
}

/** expiresSelect chooses a token's lifetime: 24 hours unless changed; never only when chosen. */
export function expiresSelect() {
  return h('select', { name: 'expires_in' },
    h('option', { value: '1h' }, '1 hour'), h('option', { value: '24h', selected: true }, '24 hours'),
    h('option', { value: '168h' }, '7 days'), h('option', { value: '720h' }, '30 days'), h('option', { value: 'never' }, 'Never'));
}

/** secretRow is a read-only field holding value, with a Copy button. */
export function secretRow(id, label, value) {
  const input = h('input', { class: 'token-value', id, readOnly: true, value, spellcheck: 'false', onfocus: (e) => e.target.select() });
  const copied = h('span', { class: 'muted small', role: 'status' });
  const copy = h('button', {
    type: 'button', class: 'btn btn-secondary',
    onclick: async () => {
      input.focus();
      input.select();
      try {
        await navigator.clipboard.writeText(value);
        copied.textContent = 'Copied.';
      } catch {
        copied.textContent = 'Press Ctrl+C (or ⌘C) to copy.';
      }
    },
  }, 'Copy');
  return { input, row: h('div', { class: 'token-row' }, h('label', { class: 'sr-only', for: id }, label), input, copy, copied) };
}

/**
 * installCommand runs the root's script with args; pin (hex) is the
 * root's CA pin, checked first when the page came over HTTPS.
 */
export function installCommand(pin, script, args) {
  if (pin && location.protocol === 'https:') {
    return `{ curl -sfk ${location.origin}/ca.crt -o root-ca.crt && test "$(sed /-----/d root-ca.crt | base64 -d | sha256sum | cut -c1-64)" = ${pin} ||\n` +
      `  { echo "refused ${location.origin}: no CA with the pin there (a man in the middle, or not reachable)" >&2; false; }; } &&\n` +
      `  curl -sfL --cacert root-ca.crt ${location.origin}/install/${script} | sh -s -- --ca-file root-ca.crt ${args}`;
  }
  return `curl -sfL ${location.origin}/install/${script} | sh -s -- ${args}`;
}
