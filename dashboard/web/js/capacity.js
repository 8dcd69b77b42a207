// Capacity as placement counts it: what the instances placed on a node
// reserve, against what the node offers (not what they use now).
import { h } from './dom.js';

/** cores formats thousandths of a core ("1.5 cores"). */
export function cores(milli) {
  const c = (milli || 0) / 1000;
  return `${Number.isInteger(c) ? c : c.toFixed(1)} core${c === 1 ? '' : 's'}`;
}

/**
 * reservedMeter shows reserved of total as a meter ("CPU reserved 1.5 of
 * 4 cores"); fmt formats an amount.
 */
export function reservedMeter(label, reserved, total, fmt) {
  const r = reserved || 0;
  const t = total || 0;
  const p = t > 0 ? Math.min(100, (r * 100) / t) : 0;
  const tone = p >= 90 ? 'bad' : p >= 70 ? 'warn' : 'ok';
  return h('div', { class: 'meter meter-reserved', dataset: { reserved: String(r), total: String(t) } },
    h('div', { class: 'meter-head' },
      h('span', { class: 'meter-label' }, label),
      h('span', { class: 'meter-value' }, fmt(r), h('span', { class: 'muted' }, ` of ${fmt(t)}`))),
    h('div', {
      class: ['meter-track', `tone-${tone}`], role: 'meter', 'aria-label': `${label} of ${fmt(t)}`,
      'aria-valuemin': '0', 'aria-valuemax': String(t), 'aria-valuenow': String(r), 'aria-valuetext': `${fmt(r)} of ${fmt(t)}`,
    }, h('div', { class: 'meter-fill', style: { width: `${p}%` } })));
}
