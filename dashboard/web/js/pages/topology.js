// Topology: per cluster, its nodes as boxes packed with the instances
// placed on them (status, service, number), and what each node reserves.
import * as api from '../api.js';
import { Region, badge, empty, h, liveness, mb, pageHeader } from '../dom.js';
import { cores } from '../capacity.js';

export function mount(ctx) {
  const body = h('div', { class: 'stack' }, h('p', { class: 'muted loading' }, 'Loading the topology…'));
  const region = new Region(body);
  ctx.main.append(h('div', { class: 'page' },
    pageHeader('Topology', {
      crumbs: [h('a', { href: '#/infra' }, 'Infrastructure'), h('span', { 'aria-hidden': 'true' }, ' / '), h('span', { 'aria-current': 'page' }, 'Topology')],
      sub: 'Each node with the instances placed on it.',
    }),
    body));

  async function refresh(signal) {
    const [clusters, services] = await Promise.all([
      api.get('/api/clusters/', { signal }),
      api.get('/api/services/', { signal }),
    ]);
    region.update(layout(clusters || [], services || []), render);
  }

  return { title: 'Topology', refresh };
}

/** layout puts every instance in its cluster's node (or among the unplaced). */
export function layout(clusters, services) {
  const byNode = new Map();
  const unplaced = [];
  for (const s of services) {
    for (const i of s.instance_list || []) {
      const item = { key: `${s.microserviceID}.${i.instance_number}`, app: s.applicationID, label: `${s.app_name}/${s.microservice_name} #${i.instance_number}`, status: i.status };
      const k = i.cluster_id && i.worker_id ? `${i.cluster_id}/${i.worker_id}` : '';
      if (k) {
        if (!byNode.has(k)) byNode.set(k, []);
        byNode.get(k).push(item);
      } else {
        unplaced.push(item);
      }
    }
  }
  const sort = (xs) => xs.sort((a, b) => a.label.localeCompare(b.label));
  return {
    clusters: clusters.map((c) => ({
      id: c._id, name: c.cluster_name, active: c.active,
      nodes: (c.nodes || []).map((n) => ({
        id: n.id, name: n.name, active: n.active, mode: n.mode || '',
        cpu: `${cores(n.reserved_milli_cpu)} of ${cores(n.milli_cpu)}`, mem: `${mb(n.reserved_memory_in_mb)} of ${mb(n.memory_in_mb)}`,
        insts: sort(byNode.get(`${c._id}/${n.id}`) || []),
      })).sort((a, b) => a.name.localeCompare(b.name)),
    })),
    unplaced: sort(unplaced),
  };
}

function instanceChip(i) {
  return h('li', { class: 'topo-inst', dataset: { key: i.key, status: i.status } },
    badge(i.status), ' ', h('a', { href: `#/apps/${encodeURIComponent(i.app)}` }, i.label));
}

function render({ clusters, unplaced }) {
  if (!clusters.length) return h('div', { class: 'card' }, empty('No cluster has joined yet.'));
  return [
    ...clusters.map((c) => h('section', { class: 'card topo-cluster', 'aria-label': `Cluster ${c.name}`, dataset: { cluster: c.name } },
      h('div', { class: 'service-head' }, h('h2', { class: 'section-title' }, c.name), liveness(c.active)),
      c.nodes.length ? h('div', { class: 'topo-grid' }, c.nodes.map((n) => h('div', {
        class: ['topo-node', !n.active && 'is-stale'], dataset: { node: n.name },
      },
      h('div', { class: 'topo-node-head' },
        h('a', { href: `#/infra/${encodeURIComponent(c.id)}/${encodeURIComponent(n.id)}`, class: 'strong-link' }, n.name),
        liveness(n.active), n.mode ? badge(n.mode.toUpperCase()) : null),
      h('p', { class: 'muted small' }, `reserved: CPU ${n.cpu} · memory ${n.mem}`),
      n.insts.length ? h('ul', { class: 'topo-insts' }, n.insts.map(instanceChip)) : h('p', { class: 'muted small' }, 'No instances.'))))
        : h('p', { class: 'muted instances-empty' }, 'No worker node has registered with this cluster yet.'))),
    unplaced.length ? h('section', { class: 'card topo-cluster', 'aria-label': 'Not placed' },
      h('div', { class: 'service-head' }, h('h2', { class: 'section-title' }, `Not placed (${unplaced.length})`)),
      h('ul', { class: 'topo-insts topo-pad' }, unplaced.map(instanceChip))) : null,
  ];
}
