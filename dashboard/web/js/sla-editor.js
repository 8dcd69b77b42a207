// The SLA editor: a plain textarea with line numbers, which points at the
// field the server's validator names (its JSON path, the line, a marker).
import { h } from './dom.js';
import { locate, offsetOf, splitProblems } from './jsonpos.js';

const TITLES = {
  400: 'The SLA is not valid. Nothing was created.',
  409: 'The SLA conflicts with what is stored. Nothing was created.',
  413: 'The SLA is too large. Nothing was created.',
};

export class SLAEditor {
  constructor({ id }) {
    this.id = id;
    this.ta = h('textarea', {
      id, name: 'sla', class: 'editor-input', wrap: 'off', spellcheck: 'false', autocapitalize: 'none', autocomplete: 'off',
      rows: 16, placeholder: '{\n  "sla_version": "v2.0",\n  "applications": [ … ]\n}',
      'aria-describedby': `${id}-hint ${id}-error`,
    });
    this.gutter = h('div', { class: 'editor-gutter', 'aria-hidden': 'true' });
    this.band = h('div', { class: 'editor-band', 'aria-hidden': 'true', hidden: true });
    this.problems = h('div', { class: 'sla-problems', id: `${id}-error`, role: 'alert', hidden: true });
    this.lines = 0;
    this.errorLines = new Set();
    this.bandLine = 0;
    this.el = h('div', { class: 'field' },
      h('label', { for: id }, 'SLA (JSON) or OAM application (YAML or JSON)'),
      h('p', { class: 'hint', id: `${id}-hint` }, 'Drop a file here, paste, or type. Errors are marked at the line of the field they concern.'),
      h('div', { class: 'editor' }, this.gutter, h('div', { class: 'editor-main' }, this.band, this.ta)),
      this.problems);

    this.onInput = () => {
      // The problems were those of the text as it was: an edit clears them
      // (the next Deploy checks the new text).
      if (!this.problems.hidden || this.bandLine) this.clearProblems();
      else this.renderGutter();
    };
    this.onScroll = () => this.syncScroll();
    this.ta.addEventListener('input', this.onInput);
    this.ta.addEventListener('scroll', this.onScroll);
    this.ta.addEventListener('dragover', (e) => {
      if (e.dataTransfer && [...e.dataTransfer.types].includes('Files')) e.preventDefault();
    });
    this.ta.addEventListener('drop', async (e) => {
      const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
      if (!f) return;
      e.preventDefault();
      this.setText(await f.text());
    });
    this.renderGutter(true);
  }

  text() {
    return this.ta.value;
  }

  setText(t) {
    this.ta.value = t;
    this.clearProblems();
    this.renderGutter(true);
    this.ta.scrollTop = 0;
    this.syncScroll();
  }

  focus() {
    this.ta.focus();
  }

  destroy() {
    this.ta.removeEventListener('input', this.onInput);
    this.ta.removeEventListener('scroll', this.onScroll);
  }

  renderGutter(force) {
    const n = this.ta.value.split('\n').length;
    if (!force && n === this.lines) return;
    this.lines = n;
    const frag = [];
    for (let i = 1; i <= n; i++) frag.push(h('div', { class: this.errorLines.has(i) ? 'is-error' : null }, String(i)));
    this.gutter.replaceChildren(...frag);
    this.syncScroll();
  }

  lineHeight() {
    return parseFloat(getComputedStyle(this.ta).lineHeight) || 20;
  }

  syncScroll() {
    this.gutter.scrollTop = this.ta.scrollTop;
    if (this.bandLine) {
      const pad = parseFloat(getComputedStyle(this.ta).paddingTop) || 0;
      this.band.style.setProperty('transform', `translateY(${pad + (this.bandLine - 1) * this.lineHeight() - this.ta.scrollTop}px)`);
    }
  }

  clearProblems() {
    this.problems.hidden = true;
    this.problems.replaceChildren();
    this.ta.removeAttribute('aria-invalid');
    this.errorLines.clear();
    this.bandLine = 0;
    this.band.hidden = true;
    this.renderGutter(true);
  }

  /**
   * showProblems shows the server's error message, each problem with its
   * field path and line, marks those lines and selects the first field.
   */
  showProblems(message, field, status) {
    const text = this.ta.value;
    const items = splitProblems(message).map((p) => {
      let where = p.path ? locate(text, p.path) : null;
      if (!where) {
        // Malformed JSON: the server names a line and column.
        const m = /line (\d+), column (\d+)/.exec(p.message);
        if (m) {
          const off = offsetOf(text, Number(m[1]), Number(m[2]));
          where = { start: off, end: off, line: Number(m[1]), exact: true };
        }
        // An OAM manifest's problems name their line: "(line 12)".
        const l = m ? null : /\(line (\d+)\)$/.exec(p.message);
        if (l) {
          const off = offsetOf(text, Number(l[1]), 1);
          where = { start: off, end: off, line: Number(l[1]), exact: true };
        }
      }
      return { ...p, where };
    });
    // The field the server singles out comes first.
    if (field) {
      const i = items.findIndex((p) => p.path === field);
      if (i > 0) items.unshift(...items.splice(i, 1));
      else if (i < 0) items.unshift({ path: field, message: '', where: locate(text, field) });
    }
    this.errorLines = new Set(items.filter((p) => p.where).map((p) => p.where.line));
    const first = items.find((p) => p.where);
    this.renderGutter(true);
    this.problems.replaceChildren(
      h('p', { class: 'sla-problems-title' }, TITLES[status] || (status ? `The SLA was not accepted (HTTP ${status}).` : 'Nothing was created.')),
      h('ul', { class: 'sla-problem-list' }, items.map((p) => h('li', { class: 'sla-problem' },
        p.path ? h('code', { class: 'field-path', dataset: { field: p.path } }, p.path) : null,
        p.message ? h('span', { class: 'sla-problem-msg' }, p.message) : null,
        p.where ? h('button', {
          type: 'button', class: 'link-btn', 'aria-label': `Go to line ${p.where.line}${p.path ? `, ${p.path}` : ''}`,
          onclick: () => this.reveal(p.where),
        }, `line ${p.where.line}`) : null))));
    this.problems.hidden = false;
    this.ta.setAttribute('aria-invalid', 'true');
    if (first) this.reveal(first.where, false);
  }

  /** reveal marks a location's line and scrolls it into view (selecting it when focus is wanted). */
  reveal(where, select = true) {
    this.bandLine = where.line;
    this.band.hidden = false;
    const lh = this.lineHeight();
    const top = (where.line - 1) * lh;
    const view = this.ta.clientHeight;
    if (top < this.ta.scrollTop || top > this.ta.scrollTop + view - 2 * lh) this.ta.scrollTop = Math.max(0, top - view / 3);
    this.syncScroll();
    if (select) {
      this.ta.focus({ preventScroll: true });
      this.ta.setSelectionRange(where.start, Math.max(where.start, Math.min(where.end, lineEnd(this.ta.value, where.start))));
    }
  }
}

function lineEnd(text, offset) {
  const nl = text.indexOf('\n', offset);
  return nl < 0 ? text.length : nl;
}
