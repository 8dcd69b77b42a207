// Editing a stored service: the SLA form filled with the service as
// stored, sent to PUT /api/service/{id}. Environment values stay masked in
// the form (any may be a secret): a variable whose value is sent back as
// the mask keeps its stored value; one given a new value takes it. The
// root replaces the instances one at a time when what they run changed.
import * as api from './api.js';
import { h } from './dom.js';
import { serviceDialog, slaFor } from './addservice.js';
import { MASK } from './stored.js';

/** microserviceOf is a stored service as the SLA microservice that makes it, its environment values masked. */
export function microserviceOf(s) {
  const m = {
    microservice_name: s.microservice_name,
    microservice_namespace: s.microservice_namespace,
    virtualization: s.virtualization,
    code: s.code,
    cmd: s.cmd || [],
    environment: (s.environment || []).map((kv) => (kv.includes('=') ? `${kv.slice(0, kv.indexOf('='))}=${MASK}` : kv)),
    memory: s.memory,
    vcpus: s.vcpus,
    vgpus: s.vgpus || 0,
    vtpus: s.vtpus || 0,
    bandwidth_in: s.bandwidth_in || 0,
    bandwidth_out: s.bandwidth_out || 0,
    storage: s.storage || 0,
    port: s.port || '',
    added_files: s.added_files || [],
    constraints: s.constraints || [],
  };
  if ((s.arch || []).length) m.arch = s.arch;
  if (s.one_shot) m.one_shot = true;
  const d = s.disconnect;
  if (d) {
    m.disconnect = { replace_after: d.replace_after, stop_after: d.stop_after, reconcile: d.reconcile };
    if (!s.one_shot) m.disconnect.replace = d.replace;
  }
  if (s.security) m.security = s.security;
  const impls = s.implementations || [];
  if (impls.length > 1) {
    m.implementation_name = impls[0].name;
    m.alternatives = impls.slice(1).map((i) => ({
      name: i.name, virtualization: i.virtualization, code: i.code, arch: i.arch, cmd: i.cmd,
      memory: i.memory_mb, vcpus: Math.round(i.milli_cpu / 1000),
    }));
  }
  if (s.node_selector && Object.keys(s.node_selector).length) m.node_selector = s.node_selector;
  if ((s.allow_from || []).length) m.allow_from = s.allow_from;
  return m;
}

/** unmask puts the stored value back into each NAME=<mask> of env whose NAME is stored. */
export function unmask(env, stored) {
  const values = new Map((stored || []).filter((kv) => kv.includes('=')).map((kv) => [kv.slice(0, kv.indexOf('=')), kv]));
  return (env || []).map((kv) => {
    if (typeof kv !== 'string' || !kv.endsWith(`=${MASK}`)) return kv;
    return values.get(kv.slice(0, kv.length - MASK.length - 1)) ?? kv;
  });
}

/** openEditService edits service s; done(answer) runs after with the service as stored. */
export function openEditService(s, done) {
  const app = { applicationID: s.applicationID, application_name: s.app_name, application_namespace: s.app_ns };
  serviceDialog({
    id: 'edit-service',
    title: `Edit service ${s.microservice_name}`,
    intro: ['The service as stored. Environment values stay masked: one left as ', h('code', null, MASK),
      ' keeps its value. When what its instances run changes, they are replaced one at a time, each new one running before an old one stops.'],
    initial: microserviceOf(s),
    submit: 'Save',
    send: (svc) => {
      if (Array.isArray(svc.environment)) svc.environment = unmask(svc.environment, s.environment);
      return api.put(`/api/service/${api.seg(s.microserviceID)}`, { json: slaFor(app, svc) });
    },
    done: (_, answer) => done(answer),
  });
}

/** rolloutNote says how far an edit's rollout is, or why it stopped. */
export function rolloutNote(s) {
  const r = s.rollout;
  if (!r) return null;
  const text = r.message
    ? `Rollout stopped: ${r.message}`
    : `Rolling out an edit: ${r.outdated} of ${r.replicas} instance${r.replicas === 1 ? '' : 's'} still on the old spec`;
  return h('p', { class: ['rollout', r.message ? 'rollout-stopped' : null], role: 'status', dataset: { outdated: String(r.outdated) } }, text);
}
