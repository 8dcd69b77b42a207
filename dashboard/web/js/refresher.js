// Refreshes of what is on screen (a page, a drawer): at once, then again
// when the root's live stream (live.js) says that something shown changed,
// with a slow poll (SLOW_POLL_MS) as a safety net; without the stream, or
// for what the stream does not carry, a poll every `poll` ms as before.
// Nothing is refreshed while the tab is hidden; shown again, everything on
// screen is refreshed at once.
import * as live from './live.js';

export const POLL_MS = 2000;
export const SLOW_POLL_MS = 30_000;
// A change refreshes after DEBOUNCE_MS (a burst is one refresh), but not
// sooner than `gap` after the previous refresh: what sees changes all the
// time costs no more than the old polling; a change of figures that move all
// the time (usage: true) at most every `usageGap`.
const DEBOUNCE_MS = 150;
const GAP_MS = 2000;
const USAGE_GAP_MS = 5000;
// setTimeout's longest delay; a later refresh waits for the next poll.
const MAX_DELAY_MS = 2 ** 31 - 1;

const running = new Set();

export class Refresher {
  /**
   * run(signal) loads and shows the data (its errors are its own to show).
   * match(change) says whether a change of the stream ({kind, id, usage})
   * concerns what is shown; without it the stream is not followed and
   * run is polled every `poll` ms. The refresher ends when signal aborts.
   */
  constructor({ run, signal, match = null, poll = POLL_MS, gap = GAP_MS, usageGap = USAGE_GAP_MS }) {
    this.run = run;
    this.signal = signal;
    this.match = match;
    this.poll = poll;
    this.gap = gap;
    this.usageGap = usageGap;
    this.timer = 0;
    this.due = 0;
    this.busy = false;
    this.again = false;
    this.last = 0;
    if (signal.aborted) return;
    running.add(this);
    signal.addEventListener('abort', () => {
      running.delete(this);
      clearTimeout(this.timer);
    }, { once: true });
    this.now();
  }

  /** now refreshes at once (after the refresh under way, if one is). */
  async now() {
    if (this.signal.aborted) return;
    clearTimeout(this.timer);
    this.due = 0;
    if (document.hidden) return; // refreshed when shown again
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    this.last = Date.now();
    try {
      await this.run(this.signal);
    } catch (e) {
      if (!this.signal.aborted && e.name !== 'AbortError') console.warn('refresh', e);
    } finally {
      this.busy = false;
    }
    if (this.signal.aborted) return;
    if (this.again) {
      this.again = false;
      this.now();
      return;
    }
    this.later(this.match && live.isOpen() ? SLOW_POLL_MS : this.poll);
  }

  /** later refreshes in ms, unless a refresh is due sooner. */
  later(ms) {
    if (this.signal.aborted) return;
    ms = Math.min(Math.max(0, ms), MAX_DELAY_MS);
    const due = Date.now() + ms;
    if (this.due && this.due <= due) return;
    clearTimeout(this.timer);
    this.due = due;
    this.timer = setTimeout(() => this.now(), ms);
  }

  changed(batch) {
    let real = batch.reset;
    let usage = false;
    for (const c of batch.changes || []) {
      if (!this.match(c)) continue;
      if (c.usage) usage = true;
      else real = true;
    }
    const after = (gap) => Math.max(DEBOUNCE_MS, this.last + gap - Date.now());
    if (real) this.later(after(this.gap));
    else if (usage) this.later(after(this.usageGap));
  }

  // The stream opened: catch up once (changes may have been missed while
  // it was closed), then poll slowly. It closed: poll as before.
  streamState(state) {
    if (state === 'open') this.later(DEBOUNCE_MS);
    else if (state === 'off') this.later(this.poll);
  }
}

/** ofKinds matches the changes of those kinds (any object). */
export function ofKinds(kinds) {
  return (c) => kinds.includes(c.kind);
}

/** ofObject matches the changes of one object: kind and id (or "*", many of the kind). */
export function ofObject(kinds, id) {
  return (c) => kinds.includes(c.kind) && (c.id === id || c.id === '*');
}

live.onChange((batch) => {
  for (const r of running) if (r.match) r.changed(batch);
});

live.onState((state) => {
  for (const r of running) if (r.match) r.streamState(state);
});

document.addEventListener('visibilitychange', () => {
  if (document.hidden) return;
  for (const r of running) r.now();
});
