// Infrastructure: clusters and their worker nodes, capacity and usage.
import * as api from '../api.js';
import { Region, badge, empty, h, liveness, mb, meter, pageHeader, table, time } from '../dom.js';
import { cores, reservedMeter } from '../capacity.js';
import { busy, confirmAction, describe, toast } from '../ui.js';

export function mount(ctx) {
  const summary = h('div');
  const list = h('div', { class: 'stack' }, h('p', { class: 'muted loading' }, 'Loading clusters…'));
  const sumRegion = new Region(summary);
  const listRegion = new Region(list);
  ctx.main.append(h('div', { class: 'page' },
    pageHeader('Infrastructure', {
      sub: 'Clusters that joined this root, and their worker nodes.',
      actions: h('a', { href: '#/topology', class: 'btn btn-secondary btn-sm', dataset: { action: 'topology' } }, 'Topology'),
    }),
    summary, list));

  async function refresh(signal) {
    const clusters = (await api.get('/api/clusters/', { signal })) || [];
    sumRegion.update(totals(clusters), renderSummary);
    // last_seen changes on every sync; render it as minutes so a quiet
    // system does not redraw every poll.
    listRegion.update(clusters.map((c) => ({
      ...c, last_seen: roundTime(c.last_seen),
      nodes: (c.nodes || []).map((n) => ({ ...n, last_seen: roundTime(n.last_seen) })),
    })), (cs) => renderClusters(cs, del));
  }

  // An admin deletes a cluster: its credential is revoked at once and its
  // instances are placed on other clusters.
  async function del(btn, c) {
    const ok = await confirmAction({
      title: `Delete cluster ${c.cluster_name}?`,
      body: 'Its credential stops working at once, its address block is freed and its instances are placed on other clusters. If it still runs with a join token that works, it can join again as a new cluster: revoke that token too.',
      confirm: 'Delete cluster',
    });
    if (!ok) return;
    await busy(btn, async () => {
      try {
        await api.del(`/api/clusters/${api.seg(c._id)}`, { signal: ctx.signal });
        toast(`Deleted cluster ${c.cluster_name}.`);
      } catch (err) {
        if (err.name !== 'AbortError') toast(describe(err), { tone: 'error' });
      }
    });
    ctx.refreshNow();
  }

  return { title: 'Infrastructure', refresh };
}

// clusterState: a cluster that answers but has no active node cannot run
// anything: not green.
function clusterState(c, nodes) {
  if (c.active && !c.active_nodes) {
    return h('span', { class: 'badge tone-warn', dataset: { state: 'no-nodes' } }, h('span', { class: 'dot', 'aria-hidden': 'true' }),
      nodes.length ? 'no active node' : 'no node');
  }
  return liveness(c.active);
}

// stale stands in for a lost node's usage: greyed, with its age.
function stale(n) {
  return h('span', { class: 'stale' }, 'no current data · last seen ', n.last_seen ? time(n.last_seen) : 'never');
}

function roundTime(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  const age = Date.now() - t;
  const step = age < 60_000 ? 10_000 : 60_000;
  return new Date(Math.floor(t / step) * step).toISOString();
}

function totals(clusters) {
  let nodes = 0;
  let activeNodes = 0;
  let cores = 0;
  let memory = 0;
  for (const c of clusters) {
    for (const n of c.nodes || []) {
      nodes++;
      if (n.active) {
        activeNodes++;
        cores += n.cpu_cores || 0;
        memory += n.memory_in_mb || 0;
      }
    }
  }
  return {
    clusters: clusters.length, activeClusters: clusters.filter((c) => c.active).length, nodes, activeNodes, cores, memory,
  };
}

function renderSummary(t) {
  const tile = (label, value, sub) => h('div', { class: 'tile' }, h('div', { class: 'tile-label' }, label), h('div', { class: 'tile-value' }, value), sub ? h('div', { class: 'tile-sub muted' }, sub) : null);
  return h('div', { class: 'tiles', role: 'group', 'aria-label': 'Totals' },
    tile('Clusters', String(t.clusters), `${t.activeClusters} active`),
    tile('Nodes', String(t.nodes), `${t.activeNodes} active`),
    tile('CPU cores', String(t.cores), 'on active nodes'),
    tile('Memory', mb(t.memory), 'on active nodes'));
}

function renderClusters(clusters, del) {
  if (!clusters.length) {
    return h('div', { class: 'card' }, empty('No cluster has joined yet.',
      'Start thicket-cluster with --root-url pointing at this root and a join token.',
      api.isAdmin() ? h('span', null, 'Create a token under ', h('a', { href: '#/tokens' }, 'Join tokens'), '.') : 'An admin can create a join token for you.'));
  }
  return clusters.map((c) => renderCluster(c, del));
}

function renderCluster(c, del) {
  const titleId = `cl-${c._id}`;
  const nodes = c.nodes || [];
  return h('section', { class: 'card cluster', 'aria-labelledby': titleId, dataset: { cluster: c.cluster_name } },
    h('div', { class: 'service-head' },
      h('div', { class: 'service-title' },
        h('h2', { class: 'section-title', id: titleId }, c.cluster_name, c.cluster_location ? h('span', { class: 'chip' }, c.cluster_location) : null),
        h('div', { class: 'service-status' }, clusterState(c, nodes),
          h('span', { class: 'muted' }, `${c.active_nodes} of ${nodes.length} node${nodes.length === 1 ? '' : 's'} active · seen `, time(c.last_seen)))),
      h('div', { class: 'chips' }, (c.virtualization || []).map((v) => h('span', { class: 'chip' }, v)),
        api.isAdmin() ? h('a', {
          href: `#/clusters/${encodeURIComponent(c.cluster_name)}/node-tokens`, class: 'btn btn-secondary btn-sm',
          dataset: { key: `tokens-of-${c._id}`, action: 'node-tokens' }, 'aria-label': `Node join tokens of ${c.cluster_name}`,
        }, 'Node tokens') : null,
        api.isAdmin() ? h('button', {
          type: 'button', class: 'btn btn-danger-quiet btn-sm', dataset: { key: `delete-${c._id}`, action: 'delete-cluster' },
          'aria-label': `Delete cluster ${c.cluster_name}`, onclick: (e) => del(e.currentTarget, c),
        }, 'Delete') : null)),
    h('div', { class: 'meters' },
      meter('CPU used', c.cpu_percent, `${c.total_cpu_cores} cores`),
      meter('Memory used', c.memory_percent, mb(c.memory_in_mb)),
      reservedMeter('CPU reserved', c.reserved_milli_cpu, c.milli_cpu, cores),
      reservedMeter('Memory reserved', c.reserved_memory_in_mb, c.memory_in_mb, mb)),
    nodes.length ? h('div', { class: 'instances' },
      h('h3', { class: 'sub-title' }, `Nodes (${nodes.length})`),
      table([
        { label: 'Node', cell: (n) => h('a', { href: `#/infra/${encodeURIComponent(c._id)}/${encodeURIComponent(n.id)}`, class: 'strong-link', dataset: { key: `node-${n.id}` } }, n.name) },
        { label: 'State', cell: (n) => (n.mode ? h('span', { class: 'chips' }, liveness(n.active), badge(n.mode.toUpperCase())) : liveness(n.active)) },
        { label: 'Arch', cell: (n) => n.arch },
        // A lost node's usage is as old as its last report: not shown as
        // current.
        { label: 'CPU used', cell: (n) => (n.active ? meter('CPU used', n.cpu_percent, cores(n.milli_cpu)) : stale(n)), class: 'meter-cell' },
        { label: 'Memory used', cell: (n) => (n.active ? meter('Memory used', n.memory_percent, mb(n.memory_in_mb)) : stale(n)), class: 'meter-cell' },
        { label: 'Reserved', cell: (n) => h('div', { class: 'stack-tight' },
          reservedMeter('CPU reserved', n.reserved_milli_cpu, n.milli_cpu, cores),
          reservedMeter('Memory reserved', n.reserved_memory_in_mb, n.memory_in_mb, mb)), class: 'meter-cell' },
        { label: 'vGPUs', cell: (n) => String(n.vgpus || 0), class: 'num' },
        { label: 'Runs', cell: (n) => h('div', { class: 'chips' }, (n.virtualization || []).map((v) => h('span', { class: 'chip' }, v))) },
      ], nodes, { caption: `Nodes of ${c.cluster_name}`, rowKey: (n) => n.id || n.name })) : h('p', { class: 'muted instances-empty' }, 'No worker node has registered with this cluster yet.'));
}
