// Page-independent UI: toasts, the confirmation dialog, the connection banner.
import { h } from './dom.js';

/** toast shows a short message in the polite live region. */
export function toast(message, { tone = 'ok', timeout } = {}) {
  const box = document.getElementById('toasts');
  const el = h('div', { class: ['toast', `toast-${tone}`], role: tone === 'error' ? 'alert' : 'status' },
    h('span', null, message),
    h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', onclick: () => el.remove() }, '×'));
  box.append(el);
  setTimeout(() => el.remove(), timeout ?? (tone === 'error' ? 9000 : 4000));
  return el;
}

/**
 * confirmAction asks before a destructive action, in a modal dialog that
 * traps focus and closes on Escape. Resolves true when confirmed.
 */
export function confirmAction({ title, body, confirm = 'Delete', tone = 'danger' }) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'modal', 'aria-labelledby': 'confirm-title' },
      h('form', { method: 'dialog', class: 'modal-body' },
        h('h2', { id: 'confirm-title', class: 'modal-title' }, title),
        body ? h('p', { class: 'muted' }, body) : null,
        h('div', { class: 'modal-actions' },
          h('button', { type: 'submit', value: 'cancel', class: 'btn btn-secondary', autofocus: true }, 'Cancel'),
          h('button', { type: 'submit', value: 'ok', class: ['btn', tone === 'danger' ? 'btn-danger' : 'btn-primary'], dataset: { confirm: '' } }, confirm))));
    dlg.addEventListener('close', () => {
      resolve(dlg.returnValue === 'ok');
      dlg.remove();
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** banner shows (or, with null, hides) a page-wide notice such as a lost connection. */
export function banner(message) {
  const el = document.getElementById('banner');
  if (!message) {
    el.hidden = true;
    el.textContent = '';
    return;
  }
  if (el.textContent !== message) el.textContent = message;
  el.hidden = false;
}

/** busy disables a button while fn runs, and shows a spinner on it. */
export async function busy(button, fn) {
  if (button.disabled) return undefined;
  button.disabled = true;
  button.classList.add('is-busy');
  button.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.classList.remove('is-busy');
    button.removeAttribute('aria-busy');
  }
}

/** describe turns an error into a sentence for a person. */
export function describe(err) {
  if (err && err.name === 'ApiError') return capitalize(err.message);
  if (err instanceof TypeError) return 'Cannot reach thicket-root. Check the connection and try again.';
  return capitalize(String(err && err.message ? err.message : err));
}

export function capitalize(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}
