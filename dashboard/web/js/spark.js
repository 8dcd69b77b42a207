// Sparklines: a small SVG line of samples over the last hour.
const NS = 'http://www.w3.org/2000/svg';

/**
 * sparkline draws values (0..max) as a polyline in a w×h box; label names
 * it for screen readers with its latest value.
 */
export function sparkline(values, { max = 100, w = 120, h = 28, label = '' } = {}) {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('width', String(w));
  svg.setAttribute('height', String(h));
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  if (values.length) {
    const top = Math.max(max, ...values) || 1;
    const step = values.length > 1 ? w / (values.length - 1) : 0;
    const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(h - 1 - (v / top) * (h - 2)).toFixed(1)}`);
    if (values.length === 1) pts.push(`${w},${pts[0].split(',')[1]}`);
    const line = document.createElementNS(NS, 'polyline');
    line.setAttribute('points', pts.join(' '));
    line.setAttribute('class', 'spark-line');
    svg.append(line);
  }
  return svg;
}
