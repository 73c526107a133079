/**
 * Time for the controller: a real clock in production, a manual one in tests so back-off and
 * probe schedules (10 s … 5 min) are checked without waiting.
 */
export interface Clock {
  now(): number;
  /** Calls fn after ms; returns a cancel function. */
  setTimer(ms: number, fn: () => void): () => void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(t);
  },
};

interface Timer {
  due: number;
  seq: number;
  fn: () => void;
}

/** A clock that only moves when told to; timers run in due order, promises settle in between. */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Set<Timer>();
  constructor(start = Date.UTC(2026, 0, 1, 12, 0, 0)) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimer(ms: number, fn: () => void): () => void {
    const timer: Timer = { due: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }
  /** Pending timer count (for tests that check nothing is left scheduled). */
  get pending(): number {
    return this.timers.size;
  }
  /** Moves time forward by ms, running each due timer at its own time and letting promises settle. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    for (;;) {
      const next = [...this.timers].filter((x) => x.due <= end).sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (!next) break;
      this.timers.delete(next);
      this.t = Math.max(this.t, next.due);
      next.fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

/** Lets chains of resolved promises and immediates run (fake drivers resolve at once). */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}
