// One worker node: its state, address, location, estimated round trips,
// capacity (total, reserved by the instances placed on it, used now) and
// the instances it runs.
import * as api from '../api.js';
import { Region, badge, empty, h, liveness, mb, meter, pageHeader, table, time } from '../dom.js';
import { cores, reservedMeter } from '../capacity.js';
import { busy, confirmAction, describe, toast } from '../ui.js';
import { sparkline } from '../spark.js';

// rttMs estimates the round trip between two network coordinates (Vivaldi,
// as Serf computes it: seconds), in ms rounded to 0.1; null without both.
export function rttMs(a, b) {
  if (!a || !b || !a.vec || !b.vec || a.vec.length !== b.vec.length) return null;
  let sq = 0;
  a.vec.forEach((v, i) => { sq += (v - b.vec[i]) ** 2; });
  const dist = Math.sqrt(sq) + a.height + b.height;
  const adjusted = dist + a.adjustment + b.adjustment;
  return Math.round((adjusted > 0 ? adjusted : dist) * 10000) / 10;
}

// roundTrips lists the estimated round trips from node n to its cluster's
// centre and to the cluster's other nodes, nearest first (at most 8).
function roundTrips(c, n) {
  const out = [];
  const centre = rttMs(n.coordinate, c.coordinate);
  if (centre !== null) out.push({ to: `cluster ${c.cluster_name}`, ms: centre });
  const peers = [];
  for (const p of c.nodes || []) {
    const ms = p.id === n.id ? null : rttMs(n.coordinate, p.coordinate);
    if (ms !== null) peers.push({ to: p.name, ms });
  }
  peers.sort((x, y) => x.ms - y.ms);
  return out.concat(peers.slice(0, 8));
}

export function mount(ctx) {
  const { clusterId, nodeId } = ctx.params;
  const page = h('div', { class: 'stack' }, h('p', { class: 'muted loading' }, 'Loading the node…'));
  const region = new Region(page);
  ctx.main.append(h('div', { class: 'page' }, page));

  async function refresh(signal) {
    const [clusters, services, usage] = await Promise.all([
      api.get('/api/clusters/', { signal }),
      api.get('/api/services/', { signal }),
      api.get(`/api/clusters/${api.seg(clusterId)}/nodes/${api.seg(nodeId)}/usage`, { signal }).catch((err) => {
        if (err.name === 'AbortError') throw err;
        return null; // the graphs are a nicety
      }),
    ]);
    const c = (clusters || []).find((x) => x._id === clusterId);
    const n = c && (c.nodes || []).find((x) => x.id === nodeId);
    if (!n) {
      region.update({ missing: true }, () => h('div', { class: 'card' },
        empty('This node is not known (any more).', 'Its cluster may have been deleted, or the node forgotten.'),
        h('p', { class: 'center' }, h('a', { href: '#/infra', class: 'btn btn-secondary' }, 'Back to the infrastructure'))));
      return;
    }
    document.title = `${n.name} · Thicket`;
    const insts = [];
    for (const s of services || []) {
      for (const i of s.instance_list || []) {
        if (i.cluster_id === clusterId && i.worker_id === nodeId) insts.push({ s, i });
      }
    }
    insts.sort((a, b) => a.s.microservice_name.localeCompare(b.s.microservice_name) || a.i.instance_number - b.i.instance_number);
    const plain = { ...n }; // coordinates move at every sync: shown as round trips
    delete plain.coordinate;
    const samples = (usage && usage.samples) || [];
    region.update({ c: { id: c._id, name: c.cluster_name }, rtts: roundTrips(c, n), n: { ...plain, cpu_percent: Math.round(n.cpu_percent), memory_percent: Math.round(n.memory_percent), last_seen: n.active ? '' : n.last_seen }, insts, samples }, render);
  }

  // An admin deletes the node: its cluster revokes its credential at once
  // and places its instances on other nodes.
  async function del(btn, c, n) {
    const ok = await confirmAction({
      title: `Delete node ${n.name}?`,
      body: `Cluster ${c.name} revokes its credential at once (the node is disconnected and cannot register again with it), frees its subnet and places its instances on other nodes. The host can join again only as a new node, with a node join token and a fresh data dir.`,
      confirm: 'Delete node',
    });
    if (!ok) return;
    await busy(btn, async () => {
      try {
        await api.del(`/api/clusters/${api.seg(c.id)}/nodes/${api.seg(n.id)}`, { signal: ctx.signal });
        toast(`Deleted node ${n.name}.`);
        window.location.hash = '#/infra';
      } catch (err) {
        if (err.name !== 'AbortError') toast(describe(err), { tone: 'error' });
      }
    });
  }

  // An admin cordons (nothing new placed there), drains (cordon, and its
  // cluster moves its instances to its other nodes one at a time) or
  // uncordons the node.
  async function setMode(btn, c, n, action) {
    if (action === 'drain') {
      const ok = await confirmAction({
        title: `Drain node ${n.name}?`,
        body: `Nothing new is placed on it, and cluster ${c.name} moves its instances to its other nodes one at a time: each is stopped there and started on another node, the next once the one before runs. An instance that fits on no other node stays.`,
        confirm: 'Drain node', tone: 'primary',
      });
      if (!ok) return;
    }
    await busy(btn, async () => {
      try {
        const res = await api.post(`/api/clusters/${api.seg(c.id)}/nodes/${api.seg(n.id)}/${action}`, { signal: ctx.signal });
        toast(res.message);
        ctx.refreshNow();
      } catch (err) {
        if (err.name !== 'AbortError') toast(describe(err), { tone: 'error' });
      }
    });
  }

  // modeFact says whether the node takes placements.
  function modeFact(n, left) {
    if (n.mode === 'draining' || n.mode === 'drained') {
      // Draining: its instances move one at a time, each new copy running
      // before the old one stops; drained: none is left.
      return h('span', { class: 'node-mode' }, badge(n.mode.toUpperCase()),
        h('span', { class: 'muted' }, n.mode === 'draining'
          ? ` · moving its instances elsewhere, one at a time${left ? ` (${left} left)` : ''}`
          : ' · no instance left on it'));
    }
    if (n.mode === 'cordoned') return h('span', { class: 'node-mode' }, badge('CORDONED'), h('span', { class: 'muted' }, ' · nothing new is placed on it'));
    return 'takes new instances';
  }

  function modeButtons(c, n) {
    const btn = (action, label, cls) => h('button', {
      type: 'button', class: `btn ${cls} btn-sm`, dataset: { action: `${action}-node` },
      'aria-label': `${label} node ${n.name}`, onclick: (e) => setMode(e.currentTarget, c, n, action),
    }, label);
    return [
      n.mode ? btn('uncordon', 'Uncordon', 'btn-secondary') : btn('cordon', 'Cordon', 'btn-secondary'),
      n.mode !== 'drained' && n.mode !== 'draining' ? btn('drain', 'Drain', 'btn-secondary') : null,
    ];
  }

  // usageGraphs: CPU and memory over the last hour, a sample a minute.
  function usageGraphs(samples) {
    const graph = (name, values) => h('div', { class: 'spark-box', dataset: { graph: name } },
      h('span', { class: 'muted small' }, `${name}, last hour`),
      sparkline(values, { label: `${name} over the last hour: ${values.length ? `${Math.round(values[values.length - 1])} %` : 'no samples'}` }),
      h('span', { class: 'small' }, values.length ? `${Math.round(values[values.length - 1])} %` : 'no samples yet'));
    return h('div', { class: 'sparks' },
      graph('CPU', samples.map((x) => x.cpu_percent)),
      graph('Memory', samples.map((x) => x.memory)));
  }

  function render({ c, n, insts, rtts, samples }) {
    const facts = [
      ['State', n.active ? liveness(true) : h('span', null, liveness(false), h('span', { class: 'stale' }, ' · last seen ', n.last_seen ? time(n.last_seen) : 'never'))],
      ['Address', n.address ? h('code', null, n.address) : ''],
      ['Architecture', n.arch],
      ['Runs', h('span', { class: 'chips' }, (n.virtualization || []).map((v) => h('span', { class: 'chip' }, v)))],
      ['Labels', h('span', { class: 'chips node-labels' }, Object.entries(n.labels || {}).sort().map(([k, v]) => h('span', { class: 'chip' }, `${k}=${v}`)))],
      ['Cluster', c.name],
      ['Location', n.location ? h('code', null, n.location) : ''],
      ['Round trips', rtts.length ? h('span', { class: 'rtts' }, rtts.map((r, i) => h('span', { class: 'rtt' }, i ? ' · ' : '', `${r.to} ≈ ${r.ms.toFixed(1)} ms`)))
        : h('span', { class: 'muted' }, 'not measured yet')],
      ['Placement', modeFact(n, insts.length)],
    ];
    return [
      pageHeader(n.name, {
        crumbs: [h('a', { href: '#/infra' }, 'Infrastructure'), h('span', { 'aria-hidden': 'true' }, ' / '), h('span', { 'aria-current': 'page' }, n.name)],
        sub: `Worker node of cluster ${c.name}`,
        actions: api.isAdmin() ? [...modeButtons(c, n), h('button', {
          type: 'button', class: 'btn btn-danger-quiet btn-sm', dataset: { action: 'delete-node' },
          'aria-label': `Delete node ${n.name}`, onclick: (e) => del(e.currentTarget, c, n),
        }, 'Delete')] : null,
      }),
      h('section', { class: 'card node-page', dataset: { node: n.name } },
        h('dl', { class: 'facts' }, facts.map(([k, v]) => h('div', { class: 'fact' }, h('dt', null, k), h('dd', null, v === '' ? h('span', { class: 'muted' }, '–') : v)))),
        h('div', { class: 'meters' },
          reservedMeter('CPU reserved', n.reserved_milli_cpu, n.milli_cpu, cores),
          reservedMeter('Memory reserved', n.reserved_memory_in_mb, n.memory_in_mb, mb),
          n.active ? meter('CPU used', n.cpu_percent, cores(n.milli_cpu)) : null,
          n.active ? meter('Memory used', n.memory_percent, mb(n.memory_in_mb)) : null),
        usageGraphs(samples),
        h('div', { class: 'instances' },
          h('h3', { class: 'sub-title' }, `Instances (${insts.length})`),
          insts.length ? table([
            { label: 'Service', cell: ({ s }) => h('a', { href: `#/apps/${encodeURIComponent(s.applicationID)}` }, `${s.app_name}/${s.microservice_name}`) },
            { label: '#', cell: ({ i }) => String(i.instance_number), class: 'num' },
            { label: 'Status', cell: ({ i }) => badge(i.status) },
            { label: 'Instance IP', cell: ({ i }) => (i.instance_ip ? h('code', null, i.instance_ip) : '') },
            { label: 'Reserves', cell: ({ s }) => `${s.vcpus} vCPU · ${mb(s.memory)}` },
          ], insts, { caption: `Instances on ${n.name}`, rowKey: ({ s, i }) => `${s.microserviceID}.${i.instance_number}` })
            : h('p', { class: 'muted instances-empty' }, 'No instance is placed on this node.'))),
    ];
  }

  return { title: 'Node', refresh };
}
