// stop.js: stop strings matched across token boundaries. Text is released only once it can no
// longer be the start of a stop string, so a stop string is never emitted, even in part.
export class StopMatcher {
  /** @param {string[]} stops */
  constructor(stops) {
    this.stops = stops.filter((s) => s.length > 0);
    this.pending = '';
  }

  /**
   * Add generated text. Returns {emit, stopped}: the text now safe to emit and whether a stop
   * string was found (everything from it on is dropped).
   */
  push(text) {
    this.pending += text;
    let cut = -1;
    for (const s of this.stops) {
      const i = this.pending.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      const emit = this.pending.slice(0, cut);
      this.pending = '';
      return { emit, stopped: true };
    }
    // hold back the longest tail that is a prefix of some stop string
    let hold = 0;
    for (const s of this.stops)
      for (let k = Math.min(s.length - 1, this.pending.length); k > hold; k--)
        if (this.pending.endsWith(s.slice(0, k))) { hold = k; break; }
    const emit = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { emit, stopped: false };
  }

  /** The held-back text, at the end of a generation that did not stop on a stop string. */
  flush() {
    const t = this.pending;
    this.pending = '';
    return t;
  }
}
