/** PodDriver.find: a run the previous supervisor started is found, not started a second time. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PodDriver, parseSignal } from '../../src/runtime/driver.js';
import { containerId } from '../../src/runtime/container.js';
import type { RuntimeContext } from '../../src/runtime/sandbox.js';
import type { ContainerRecord, PodState } from '../../src/runtime/state.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function driver(recs: Partial<ContainerRecord>[]): { d: PodDriver; st: PodState; saves: number[] } {
  const st = { uid: 'uid-1', name: 'p', key: 'default_p', containers: {} } as unknown as PodState;
  for (const r of recs) st.containers[r.id!] = r as ContainerRecord;
  const saves: number[] = [];
  const d = new PodDriver({} as RuntimeContext, st, { images: { ensureImage: async () => { throw new Error('no'); } }, save: () => saves.push(1) });
  return { d, st, saves };
}

describe('PodDriver.find', () => {
  it('returns the recorded run of that restart count, and nothing for others', () => {
    const id = containerId('uid-1', 'app', 2);
    const { d } = driver([{ id, name: 'app', restartCount: 2, state: 'exited', init: { pid: 42, startTime: 7 }, createdAt: '2026-01-01T00:00:00Z', startedAt: '2026-01-01T00:00:01Z', imageID: 'x@sha256:1' }]);
    expect(d.find('app', 2)).toEqual({ id, pid: 42, startedAt: new Date('2026-01-01T00:00:01Z'), imageID: 'x@sha256:1' });
    expect(d.find('app', 1)).toBeUndefined();
    expect(d.find('other', 2)).toBeUndefined();
  });

  it('a run only created (never started) is not found', () => {
    const id = containerId('uid-1', 'app', 0);
    const { d } = driver([{ id, name: 'app', restartCount: 0, state: 'created', stateDir: dir, createdAt: '2026-01-01T00:00:00Z' }]);
    expect(d.find('app', 0)).toBeUndefined();
  });

  it('adopts a run whose monitor reported a start the dead supervisor never saved', () => {
    const id = containerId('uid-1', 'app', 0);
    fs.writeFileSync(path.join(dir, 'started'), '4242 4243 99\n');
    const { d, st, saves } = driver([{ id, name: 'app', restartCount: 0, state: 'created', stateDir: dir, createdAt: '2026-01-01T00:00:00Z' }]);
    const run = d.find('app', 0);
    expect(run).toMatchObject({ id, pid: 4243 });
    expect(st.containers[id]).toMatchObject({ state: 'running', init: { pid: 4243, startTime: 99 }, monitor: { pid: 4242 } });
    expect(saves.length).toBe(1);
  });
});

describe('parseSignal (an image STOPSIGNAL)', () => {
  it('takes names with or without SIG, numbers, and real-time signals as Docker writes them', () => {
    expect(parseSignal('SIGUSR1')).toBe('SIGUSR1');
    expect(parseSignal('quit')).toBe('SIGQUIT');
    expect(parseSignal('10')).toBe(10);
    expect(parseSignal('SIGRTMIN+3')).toBe(37);
    expect(parseSignal('RTMIN')).toBe(34);
    expect(parseSignal('SIGRTMAX-1')).toBe(63);
    expect(parseSignal('SIGRTMAX+1')).toBeUndefined();
    expect(parseSignal('SIGNOPE')).toBeUndefined();
    expect(parseSignal(undefined)).toBeUndefined();
  });
});
