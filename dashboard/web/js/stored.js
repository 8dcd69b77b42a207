// What a service's stored SLA says beyond its resources: its command and
// its environment, whose values are masked until the viewer reveals them
// (any value may be a secret: a password, a token).
import { h } from './dom.js';

/** MASK stands for a hidden environment value. */
export const MASK = '••••••';

/** command is the stored command, each argument quoted when it holds a space. */
export function command(s) {
  const args = s.cmd || [];
  if (!args.length) return '';
  return h('code', { class: 'break' }, args.map((a) => (/[\s"']/.test(a) || a === '' ? JSON.stringify(a) : a)).join(' '));
}

/** environment lists the stored variables; values show only when shown. */
export function environment(s, shown, toggle) {
  const env = s.environment || [];
  if (!env.length) return '';
  const items = env.map((kv) => {
    const i = kv.indexOf('=');
    const name = i < 0 ? kv : kv.slice(0, i);
    const value = i < 0 ? '' : kv.slice(i + 1);
    return h('li', null, h('code', null, name, '=', shown
      ? h('span', { class: 'env-value' }, value)
      : h('span', { class: 'env-masked', 'aria-label': 'value hidden' }, MASK)));
  });
  return h('div', { class: 'env' },
    h('ul', { class: 'env-list' }, items),
    h('button', {
      type: 'button', class: 'btn btn-quiet btn-sm', dataset: { action: 'reveal-env', key: `env-${s.microserviceID}` },
      'aria-pressed': shown ? 'true' : 'false', onclick: () => toggle(s.microserviceID),
    }, shown ? 'Hide values' : 'Show values'));
}
