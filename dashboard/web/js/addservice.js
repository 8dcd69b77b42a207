// Adding a service to an existing application: the user writes the
// service (one SLA microservice, JSON); the page wraps it into an SLA for
// that application and the root checks it (POST /api/service/). Nothing
// is created when it has problems: they are shown, with their field.
// serviceDialog is the same form for editing a service (editservice.js).
import * as api from './api.js';
import { h } from './dom.js';
import { busy } from './ui.js';

const TEMPLATE = {
  microservice_name: 'web',
  microservice_namespace: 'default',
  virtualization: 'container',
  code: 'docker.io/library/nginx:latest',
  cmd: [],
  environment: [],
  memory: 64,
  vcpus: 1,
  port: '',
};

/** openAddService asks for a service of app and adds it; done(name) runs after. */
export function openAddService(app, done) {
  serviceDialog({
    id: 'add-service',
    title: `Add a service to ${app.application_name}`,
    intro: ['One microservice of an SLA (the fields of ', h('code', null, 'microservices[]'), '). Nothing is created while it has problems.'],
    initial: TEMPLATE,
    submit: 'Add service',
    send: (svc) => api.post('/api/service/', { json: slaFor(app, svc) }),
    done: (svc) => done(svc.microservice_name),
  });
}

/** slaFor wraps one microservice into an SLA for app (applicationID, names, description). */
export function slaFor(app, svc) {
  return {
    sla_version: 'v2.0',
    customerID: api.current().username,
    applications: [{
      applicationID: app.applicationID,
      application_name: app.application_name,
      application_namespace: app.application_namespace,
      application_desc: app.application_desc,
      microservices: [svc],
    }],
  };
}

/**
 * serviceDialog asks for one microservice (JSON, starting from initial)
 * and sends it (send(svc) resolves, or rejects with the root's problem,
 * shown with its field while the dialog stays open); done(svc, answer)
 * runs after. id prefixes the elements' ids.
 */
export function serviceDialog({ id, title, intro, initial, submit: label, send, done }) {
  const input = h('textarea', {
    id: `${id}-input`, class: 'service-input', rows: 14, spellcheck: false,
    'aria-label': 'The service, as an SLA microservice (JSON)', 'aria-describedby': `${id}-error`,
  });
  input.value = JSON.stringify(initial, null, 2);
  const error = h('div', { id: `${id}-error`, class: 'field-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: `${id}-submit` }, label);
  const form = h('form', { class: 'modal-body' },
    h('h2', { id: `${id}-title`, class: 'modal-title' }, title),
    h('p', { class: 'muted' }, intro),
    input, error,
    h('div', { class: 'modal-actions' },
      h('button', { type: 'button', class: 'btn btn-secondary', onclick: () => dlg.close() }, 'Cancel'),
      submit));
  const dlg = h('dialog', { class: 'modal modal-wide', 'aria-labelledby': `${id}-title` }, form);
  const show = (msg, field) => {
    error.replaceChildren(field ? h('code', { class: 'field-path' }, field.replace(/^applications\[0\]\.microservices\[0\]\.?/, '') || 'service') : null, field ? ': ' : null, msg);
    error.hidden = false;
    input.setAttribute('aria-invalid', 'true');
  };
  input.addEventListener('input', () => {
    error.hidden = true;
    input.removeAttribute('aria-invalid');
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    let svc;
    try {
      svc = JSON.parse(input.value);
    } catch (err) {
      show(`not JSON: ${err.message}`);
      return;
    }
    if (!svc || typeof svc !== 'object' || Array.isArray(svc)) {
      show('write one service: a JSON object');
      return;
    }
    await busy(submit, async () => {
      try {
        const answer = await send(svc);
        dlg.close();
        done(svc, answer);
      } catch (err) {
        if (err.name !== 'AbortError') show(err.message, err.field);
      }
    });
  });
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  input.focus();
}
