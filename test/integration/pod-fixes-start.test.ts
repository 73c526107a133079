/**
 * PodDriver.startCreated with the real shim: a start that fails (ESHIM) kills whatever is left in
 * the container's cgroup; requested rlimits are clamped to the caller's hard limits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PodDriver } from '../../src/runtime/driver.js';
import { shimProcess } from '../../src/runtime/container.js';
import { parseLimits, type ShimPlan } from '../../src/runtime/shim.js';
import type { RuntimeContext } from '../../src/runtime/sandbox.js';
import type { ContainerRecord, PodState } from '../../src/runtime/state.js';
import { isPodrunError } from '../../src/util/errors.js';

let dir: string;
const started: ChildProcess[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-'));
});
afterEach(() => {
  // through the ChildProcess: it signals only a child that has not been reaped (its pid is ours)
  for (const c of started.splice(0)) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

const alive = (pid: number) => fs.existsSync(`/proc/${pid}`) && !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));

describe('a failed start', () => {
  it('kills what is left in the container cgroup (ESHIM) and rethrows', async () => {
    // a stand-in for a container init that joined the cgroup before the shim failed
    const left = spawn('sleep', ['30'], { stdio: 'ignore' });
    started.push(left);
    const killed: string[] = [];
    const cgroups = {
      exists: () => true,
      killAll: async (rel: string) => {
        killed.push(rel);
        process.kill(left.pid!, 'SIGKILL');
      },
    };
    const ctx = { cgroups, events: () => {} } as unknown as RuntimeContext;
    const st = { uid: 'u', name: 'p', key: 'default_p', containers: {} } as unknown as PodState;
    const d = new PodDriver(ctx, st, { images: { ensureImage: async () => { throw new Error('unused'); } }, save: () => {} });
    const stateDir = path.join(dir, 'state');
    fs.mkdirSync(path.join(stateDir, 'rootfs'), { recursive: true });
    const rec = { id: 'x', name: 'c', state: 'created', cgroupRel: 'podrun-test-x/p/c', stateDir } as ContainerRecord;
    st.containers.x = rec;
    const plan: ShimPlan = {
      containerId: 'p/c',
      stateDir,
      logPath: path.join(dir, 'c.log'),
      rootfs: { lowerDirs: [path.join(dir, 'no-such-layer')], upperDir: path.join(dir, 'upper'), workDir: path.join(dir, 'work'), mountPoint: path.join(stateDir, 'rootfs'), readOnly: false },
      namespaces: {},
      cgroupProcs: [],
      cgroupMount: null,
      mounts: [],
      maskedPaths: [],
      readonlyPaths: [],
      sysctls: [],
      process: { args: ['/bin/true'], env: [], cwd: '/', uid: 0, gid: 0, additionalGids: [], noNewPrivileges: true, capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] } },
    };
    const err = await d.startCreated(rec, plan).then(() => undefined, (e: unknown) => e);
    expect(isPodrunError(err) && err.code).toBe('ESHIM');
    expect(killed).toEqual(['podrun-test-x/p/c']);
    await new Promise((r) => setTimeout(r, 50));
    expect(alive(left.pid!)).toBe(false);
  });
});

describe('rlimits', () => {
  it('are lowered to the caller hard limit before they reach the shim plan', () => {
    const mine = parseLimits(fs.readFileSync('/proc/self/limits', 'utf8'));
    const hard = mine.NOFILE!.hard;
    const p = shimProcess({
      args: ['x'], env: [], cwd: '/', uid: 0, gid: 0, additionalGids: [], noNewPrivileges: false,
      capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: hard + 1000, hard: hard + 1000 }],
    } as never);
    expect(p.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: hard, hard }]);
  });
});
