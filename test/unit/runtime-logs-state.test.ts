import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { followLogs, parseCriLog, readLogs } from '../../src/runtime/logs.js';
import { acquireLock, isAlive, procStartTime, readState, writeState, type PodState } from '../../src/runtime/state.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('CRI logs', () => {
  it('parses full and partial lines per stream', () => {
    const text = [
      '2026-01-01T00:00:00.000000001Z stdout P hel',
      '2026-01-01T00:00:00.000000002Z stderr F oops',
      '2026-01-01T00:00:00.000000003Z stdout F lo',
      'garbage',
      '',
    ].join('\n');
    expect(parseCriLog(text)).toEqual([
      { time: '2026-01-01T00:00:00.000000002Z', stream: 'stderr', text: 'oops' },
      { time: '2026-01-01T00:00:00.000000001Z', stream: 'stdout', text: 'hello' },
    ]);
  });

  it('reads the current or previous start, with tail', () => {
    fs.writeFileSync(path.join(dir, '0.log'), 'T stdout F a\nT stdout F b\n');
    fs.writeFileSync(path.join(dir, '1.log'), 'T stdout F c\nT stdout F d\nT stdout F e\n');
    expect(readLogs(dir).map((l) => l.text)).toEqual(['c', 'd', 'e']);
    expect(readLogs(dir, { tail: 1 }).map((l) => l.text)).toEqual(['e']);
    expect(readLogs(dir, { previous: true }).map((l) => l.text)).toEqual(['a', 'b']);
    expect(() => readLogs(path.join(dir, 'none'))).toThrow(/Cannot read logs/);
  });

  it('follows a file and moves on to the next restart', async () => {
    fs.writeFileSync(path.join(dir, '0.log'), 'T stdout F one\n');
    const seen: string[] = [];
    const ac = new AbortController();
    const p = followLogs(dir, (l) => {
      seen.push(l.text);
      if (seen.length === 3) ac.abort();
    }, { signal: ac.signal, pollMs: 10 });
    await new Promise((r) => setTimeout(r, 30));
    fs.appendFileSync(path.join(dir, '0.log'), 'T stdout F two\n');
    await new Promise((r) => setTimeout(r, 30));
    fs.writeFileSync(path.join(dir, '1.log'), 'T stderr F three\n');
    await p;
    expect(seen).toEqual(['one', 'two', 'three']);
  });
});

describe('pod state', () => {
  const paths = () => ({ root: dir, runRoot: dir, logRoot: dir });
  it('round-trips atomically', () => {
    const st = { version: 1, key: 'default_a', name: 'a', namespace: 'default', resources: [], containers: {} } as unknown as PodState;
    writeState(paths(), st);
    expect(readState(paths(), 'default_a')).toEqual(st);
    expect(readState(paths(), 'default_b')).toBeUndefined();
    expect(fs.readdirSync(path.join(dir, 'pods', 'default_a'))).toEqual(['state.json']);
  });

  it('identifies processes by pid and start time', () => {
    const st = procStartTime(process.pid)!;
    expect(isAlive({ pid: process.pid, startTime: st })).toBe(true);
    expect(isAlive({ pid: process.pid, startTime: st + 1 })).toBe(false);
  });

  it('locks exclusively and breaks a stale lock', async () => {
    const f = path.join(dir, 'x.lock');
    const release = await acquireLock(f, 1000);
    await expect(acquireLock(f, 100)).rejects.toThrow(/Cannot lock/);
    release();
    fs.writeFileSync(f, `${process.pid} 1\n`); // a dead holder (wrong start time)
    const r2 = await acquireLock(f, 1000);
    r2();
    expect(fs.existsSync(f)).toBe(false);
  });
});
