/**
 * kubelet's restart back-off (k8s.io/client-go/util/flowcontrol.Backoff as kubelet uses it):
 * the first restart after a crash is immediate, then 10 s, 20 s, 40 s … capped at 5 min, measured
 * from the exit; an entry whose last restart is more than `resetAfterMs` (10 min) before the next
 * exit starts over.
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 };

export interface BackoffEntry {
  delayMs: number;
  /** When the last restart was allowed (ms since epoch). */
  lastUpdate: number;
}

export class Backoff {
  constructor(
    readonly opts: BackoffOptions,
    public entry?: BackoffEntry,
  ) {}

  private expired(eventTime: number): boolean {
    return this.entry === undefined || eventTime - this.entry.lastUpdate > this.opts.resetAfterMs;
  }

  /** When a restart for an exit at `eventTime` may happen, or undefined if it may happen now. */
  blockedUntil(eventTime: number, now: number): number | undefined {
    if (!this.entry || this.expired(eventTime)) return undefined;
    const until = eventTime + this.entry.delayMs;
    return now < until ? until : undefined;
  }

  /** Records a restart at `now` for an exit at `eventTime`; the next one waits longer. */
  next(eventTime: number, now: number): void {
    if (!this.entry || this.expired(eventTime)) this.entry = { delayMs: this.opts.baseMs, lastUpdate: now };
    else this.entry = { delayMs: Math.min(this.entry.delayMs * 2, this.opts.maxMs), lastUpdate: now };
  }
}
