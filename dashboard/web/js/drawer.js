// A side panel (modal dialog) about one instance, polled while it is open:
// what the log and events panels share.
import { h } from './dom.js';

export class DrawerPanel {
  constructor(pageSignal) {
    this.pageSignal = pageSignal;
    this.dlg = null;
    this.timer = 0;
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

  /** poll runs fn(signal) now and every ms while the drawer is open (not while the tab is hidden). */
  poll(ms, fn) {
    const signal = this.ctrl.signal;
    const tick = async () => {
      if (signal.aborted || this.pageSignal.aborted) return;
      if (!document.hidden) await fn(signal);
      if (!signal.aborted) this.timer = setTimeout(tick, ms);
    };
    tick();
  }

  stop() {
    clearTimeout(this.timer);
    if (this.ctrl) this.ctrl.abort();
    this.ctrl = null;
  }

  close() {
    this.stop();
    if (this.dlg && this.dlg.open) this.dlg.close();
  }
}
