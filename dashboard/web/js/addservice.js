// Adding a service to an existing application: the user writes the
// service (one SLA microservice, JSON); the page wraps it into an SLA for
// that application and the root checks it (POST /api/service/). Nothing
// is created when it has problems: they are shown, with their field.
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
  const input = h('textarea', {
    id: 'add-service-input', class: 'service-input', rows: 14, spellcheck: false,
    'aria-label': 'The service, as an SLA microservice (JSON)', 'aria-describedby': 'add-service-error',
  });
  input.value = JSON.stringify(TEMPLATE, null, 2);
  const error = h('div', { id: 'add-service-error', class: 'field-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'add-service-submit' }, 'Add service');
  const form = h('form', { class: 'modal-body' },
    h('h2', { id: 'add-service-title', class: 'modal-title' }, `Add a service to ${app.application_name}`),
    h('p', { class: 'muted' }, 'One microservice of an SLA (the fields of ', h('code', null, 'microservices[]'), '). Nothing is created while it has problems.'),
    input, error,
    h('div', { class: 'modal-actions' },
      h('button', { type: 'button', class: 'btn btn-secondary', onclick: () => dlg.close() }, 'Cancel'),
      submit));
  const dlg = h('dialog', { class: 'modal modal-wide', 'aria-labelledby': 'add-service-title' }, form);
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
    const sla = {
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
    await busy(submit, async () => {
      try {
        await api.post('/api/service/', { json: sla });
        dlg.close();
        done(svc.microservice_name);
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
