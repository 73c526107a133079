/**
 * The pull renderer: turns pull.* events into per-layer progress bars on a TTY (redrawn in
 * place, bytes and rate) or one line per layer state change otherwise. Other events go on to
 * `next` (warnings, traces).
 */
import type { EventSink, PodrunEvent } from '../util/events.js';

interface LayerState {
  digest: string;
  phase: string;
  bytes: number;
  total: number;
  started: number;
  rate: number;
  lastBytes: number;
  lastAt: number;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

export interface PullRenderer {
  sink: EventSink;
  /** Draws the final state and stops redrawing. */
  finish(): void;
}

export function makePullRenderer(out: NodeJS.WriteStream, next: EventSink, opts: { tty?: boolean; quiet?: boolean; now?: () => number } = {}): PullRenderer {
  const tty = opts.tty ?? Boolean(out.isTTY);
  const now = opts.now ?? Date.now;
  const layers = new Map<string, LayerState>();
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;

  const line = (l: LayerState): string => {
    const id = short(l.digest);
    if (l.phase === 'waiting') return `${id}  waiting`;
    if (l.phase === 'cached') return `${id}  already present`;
    if (l.phase === 'done') return `${id}  done        ${formatBytes(l.total)}`;
    if (l.phase === 'unpacking') return `${id}  unpacking   ${formatBytes(l.total)}`;
    const width = 30;
    const frac = l.total > 0 ? Math.min(1, l.bytes / l.total) : 0;
    const fill = Math.round(frac * width);
    const bar = '='.repeat(Math.max(0, fill - 1)) + (fill > 0 ? '>' : '') + ' '.repeat(width - fill);
    return `${id}  downloading [${bar}] ${formatBytes(l.bytes)}/${formatBytes(l.total)}  ${formatBytes(Math.round(l.rate))}/s`;
  };

  const redraw = () => {
    if (!tty || opts.quiet) return;
    let s = drawn ? `\x1b[${drawn}A` : '';
    for (const l of layers.values()) s += `\r\x1b[2K${line(l)}\n`;
    drawn = layers.size;
    out.write(s);
  };

  const sink: EventSink = (ev: PodrunEvent) => {
    if (ev.type === 'pull.resolved') {
      if (!opts.quiet) out.write(`Resolved ${ev.ref} to ${ev.digest} (${ev.layers.length} layers)\n`);
      return;
    }
    if (ev.type === 'pull.layer') {
      const t = now();
      let l = layers.get(ev.digest);
      if (!l) {
        l = { digest: ev.digest, phase: '', bytes: 0, total: ev.total, started: t, rate: 0, lastBytes: 0, lastAt: t };
        layers.set(ev.digest, l);
      }
      const changed = l.phase !== ev.phase;
      if (ev.phase === 'downloading' && t > l.lastAt) {
        const inst = ((ev.bytes - l.lastBytes) * 1000) / (t - l.lastAt);
        l.rate = l.rate ? 0.7 * l.rate + 0.3 * inst : inst;
        l.lastBytes = ev.bytes;
        l.lastAt = t;
      }
      if (changed && ev.phase === 'downloading') l.started = t;
      l.phase = ev.phase;
      l.bytes = ev.bytes;
      l.total = ev.total;
      if (tty) {
        if (!timer && !opts.quiet) timer = setInterval(redraw, 100);
        if (changed) redraw();
      } else if (changed && !opts.quiet && ev.phase !== 'waiting') {
        if (ev.phase === 'done') {
          const secs = (t - l.started) / 1000;
          out.write(`${short(ev.digest)}  done ${formatBytes(ev.total)} in ${secs.toFixed(1)} s\n`);
        } else out.write(`${line(l).replace(/\s+\[.*$/, '')}${ev.phase === 'downloading' ? ` ${formatBytes(ev.total)}` : ''}\n`);
      }
      return;
    }
    if (ev.type === 'pull.done') return;
    next(ev);
  };

  return {
    sink,
    finish() {
      if (timer) clearInterval(timer);
      timer = undefined;
      redraw();
    },
  };
}
