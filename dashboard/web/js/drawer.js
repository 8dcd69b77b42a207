// A side panel (modal dialog) about one instance, refreshed while it is
// open: what the log and events panels share.
import { h } from './dom.js';
import { Refresher, ofObject } from './refresher.js';

export class DrawerPanel {
  constructor(pageSignal) {
    this.pageSignal = pageSignal;
    this.dlg = null;
    this.ctrl = null;
  }

  /**
   * show opens the drawer (closing the one open before): a head with the
   * title and sub (nodes), then parts. Closed, it gives the focus back to
   * the element whose data-key is backKey. It returns the drawer's signal,
   * aborted when it closes.
   */
  show({ titleId, title, sub, closeLabel, backKey, parts }) {
    this.close();
    this.ctrl = new AbortController();
    const dlg = h('dialog', { class: 'drawer', 'aria-labelledby': titleId },
      h('div', { class: 'drawer-head' },
        h('div', null, h('h2', { class: 'drawer-title', id: titleId }, title), sub),
        h('button', { type: 'button', class: 'btn btn-quiet btn-icon', 'aria-label': closeLabel, onclick: () => this.close() }, '×')),
      ...parts);
    dlg.addEventListener('close', () => {
      this.stop();
      dlg.remove();
      if (this.dlg === dlg) this.dlg = null;
      const back = document.querySelector(`[data-key="${CSS.escape(backKey)}"]`);
      if (back) back.focus();
    });
    document.body.append(dlg);
    dlg.showModal();
    this.dlg = dlg;
    return this.ctrl.signal;
  }

  /**
   * follow runs fn(signal) now and again, while the drawer is open, when the
   * live stream tells of a change of the instance key of one of kinds (at
   * most every gap ms, or usageGap for usage changes), with a slow poll as
   * a safety net; every poll ms without the stream. Not while the tab is
   * hidden (refresher.js).
   */
  follow({ kinds, key, poll, gap, usageGap }, fn) {
    new Refresher({ run: fn, signal: AbortSignal.any([this.ctrl.signal, this.pageSignal]), match: ofObject(kinds, key), poll, gap, usageGap });
  }

  stop() {
    if (this.ctrl) this.ctrl.abort();
    this.ctrl = null;
  }

  close() {
    this.stop();
    if (this.dlg && this.dlg.open) this.dlg.close();
  }
}
