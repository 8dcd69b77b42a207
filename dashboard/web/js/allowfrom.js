// A service's allow_from on its page: who else may connect to its
// instances (README: Tenancy), edited in place with
// PUT /api/service/{id}/allow-from. Nothing restarts.
import * as api from './api.js';
import { h } from './dom.js';
import { busy, describe, toast } from './ui.js';

const drafts = new Map(); // service id → text being edited, across refreshes

/** parsePeers splits the field's text at commas and white space. */
export function parsePeers(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

/**
 * allowFromForm renders the list as an editable field; saved() runs after
 * a change was stored. The root's refusal (a malformed entry, a service of
 * an OAM application, whose manifest sets it) is shown as a toast.
 */
export function allowFromForm(s, { signal, saved }) {
  const current = (s.allow_from || []).join(', ');
  const id = `allow-${s.microserviceID}`;
  const input = h('input', {
    type: 'text', id, class: 'allow-input', value: drafts.get(s.microserviceID) ?? current,
    placeholder: 'only the owner\'s instances', spellcheck: 'false',
    dataset: { key: `allow-input-${s.microserviceID}` },
    'aria-label': `Who else may connect to ${s.microservice_name}: users, user/app or user/app/service, comma-separated`,
    oninput: () => drafts.set(s.microserviceID, input.value),
  });
  const btn = h('button', { type: 'submit', class: 'btn btn-secondary btn-sm', dataset: { key: `allow-save-${s.microserviceID}`, action: 'allow-from' } }, 'Save');
  return h('form', {
    class: 'allow-form', novalidate: true, dataset: { allowFrom: s.microserviceID },
    onsubmit: (e) => {
      e.preventDefault();
      busy(btn, async () => {
        const peers = parsePeers(input.value);
        try {
          await api.put(`/api/service/${api.seg(s.microserviceID)}/allow-from`, { json: { allow_from: peers }, signal });
          drafts.delete(s.microserviceID);
          toast(peers.length ? `${s.microservice_name}: ${peers.join(', ')} may connect.` : `${s.microservice_name}: only its owner's instances may connect.`);
          saved();
        } catch (err) {
          if (err.name !== 'AbortError') toast(describe(err), { tone: 'error' });
        }
      });
    },
  }, input, btn);
}
