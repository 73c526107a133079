import { describe, expect, it } from 'vitest';
import { makePullRenderer, formatBytes } from '../../src/cli/progress.js';
import type { PodrunEvent } from '../../src/util/events.js';

function fakeOut() {
  let text = '';
  return { out: { write: (s: string) => ((text += s), true), isTTY: false } as unknown as NodeJS.WriteStream, text: () => text };
}

const D1 = `sha256:${'a'.repeat(64)}`;
const D2 = `sha256:${'b'.repeat(64)}`;
const events: PodrunEvent[] = [
  { type: 'pull.resolved', ref: 'r/x:1', digest: `sha256:${'c'.repeat(64)}`, layers: [{ digest: D1, size: 2_000_000 }, { digest: D2, size: 10 }] },
  { type: 'pull.layer', ref: 'r/x:1', digest: D1, phase: 'waiting', bytes: 0, total: 2_000_000 },
  { type: 'pull.layer', ref: 'r/x:1', digest: D2, phase: 'cached', bytes: 10, total: 10 },
  { type: 'pull.layer', ref: 'r/x:1', digest: D1, phase: 'downloading', bytes: 0, total: 2_000_000 },
  { type: 'pull.layer', ref: 'r/x:1', digest: D1, phase: 'downloading', bytes: 1_000_000, total: 2_000_000 },
  { type: 'pull.layer', ref: 'r/x:1', digest: D1, phase: 'unpacking', bytes: 2_000_000, total: 2_000_000 },
  { type: 'pull.layer', ref: 'r/x:1', digest: D1, phase: 'done', bytes: 2_000_000, total: 2_000_000 },
  { type: 'pull.done', ref: 'r/x:1', digest: `sha256:${'c'.repeat(64)}` },
  { type: 'warning', message: 'passed on' },
];

describe('pull progress renderer', () => {
  it('prints one line per layer state without a TTY and passes other events on', () => {
    const { out, text } = fakeOut();
    const passed: PodrunEvent[] = [];
    let t = 0;
    const r = makePullRenderer(out, (e) => passed.push(e), { tty: false, now: () => (t += 500) });
    for (const e of events) r.sink(e);
    r.finish();
    expect(text().split('\n')).toEqual([
      `Resolved r/x:1 to sha256:${'c'.repeat(64)} (2 layers)`,
      'bbbbbbbbbbbb  already present',
      'aaaaaaaaaaaa  downloading 2.0 MB',
      'aaaaaaaaaaaa  unpacking   2.0 MB',
      'aaaaaaaaaaaa  done 2.0 MB in 1.5 s',
      '',
    ]);
    expect(passed).toEqual([{ type: 'warning', message: 'passed on' }]);
  });

  it('draws bars with bytes and rate on a TTY, redrawing in place', () => {
    const { out, text } = fakeOut();
    let t = 0;
    const r = makePullRenderer(out, () => {}, { tty: true, now: () => (t += 1000) });
    for (const e of events.slice(0, 5)) r.sink(e);
    r.finish();
    expect(text()).toContain('\x1b[2A'); // cursor up over the two layer lines
    expect(text()).toMatch(/aaaaaaaaaaaa {2}downloading \[=+> +\] 1\.0 MB\/2\.0 MB {2}1\.0 MB\/s/);
  });

  it('is silent with -q', () => {
    const { out, text } = fakeOut();
    const r = makePullRenderer(out, () => {}, { tty: true, quiet: true });
    for (const e of events.slice(0, 8)) r.sink(e);
    r.finish();
    expect(text()).toBe('');
  });

  it('formats sizes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1_500_000)).toBe('1.5 MB');
    expect(formatBytes(137_000_000)).toBe('137 MB');
  });
});
