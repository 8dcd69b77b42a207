// Login: trades a user name and password for tokens.
import * as api from '../api.js';
import { h } from '../dom.js';
import { busy, describe } from '../ui.js';

const NOTICES = {
  expired: 'Your session has ended. Please log in again.',
  logout: 'You have logged out.',
};

export function mount(ctx) {
  const user = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('div', { class: 'form-error', id: 'login-error', role: 'alert', hidden: true });
  const notice = NOTICES[ctx.endReason];
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Log in');

  const form = h('form', {
    class: 'login-form', novalidate: true, 'aria-describedby': 'login-error',
    onsubmit: (e) => {
      e.preventDefault();
      error.hidden = true;
      pass.removeAttribute('aria-invalid');
      user.removeAttribute('aria-invalid');
      if (!user.value.trim() || !pass.value) {
        show(!user.value.trim() ? user : pass, 'Enter your user name and password.');
        return;
      }
      busy(submit, async () => {
        try {
          await api.login(user.value.trim(), pass.value);
          ctx.navigate(ctx.next());
        } catch (err) {
          if (err.status === 401) show(pass, 'Wrong user name or password.');
          else show(err.field === 'username' ? user : pass, describe(err));
        }
      });
    },
  },
  h('div', { class: 'field' }, h('label', { for: user.id }, 'User name'), user),
  h('div', { class: 'field' }, h('label', { for: pass.id }, 'Password'), pass),
  error,
  submit);

  function show(input, msg) {
    error.textContent = msg;
    error.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    pass.value = '';
    input.focus();
  }

  ctx.main.append(h('div', { class: 'login-wrap' },
    h('div', { class: 'login-card card' },
      h('div', { class: 'login-brand' },
        h('img', { src: 'favicon.svg', alt: '', width: 40, height: 40 }),
        h('div', null, h('h1', { class: 'login-title' }, 'Thicket'), h('p', { class: 'muted' }, 'Edge orchestrator'))),
      notice ? h('p', { class: 'notice', role: 'status' }, notice) : null,
      form)));
  user.focus();
  return { title: 'Log in' };
}
