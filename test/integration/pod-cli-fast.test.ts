/**
 * `podrun down FILE` in one request to the real supervisor (down-text): the pods it owns are
 * removed, a pod the file names but nobody runs is "not running", and a pod owned by a
 * foreground `podrun up` (not the supervisor's) is still taken down by the CLI itself, each line
 * in the file's order. And `up -d` with another --root than the running supervisor is refused
 * by the supervisor, with nothing made.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, cgroupDirs, mountsBelow, randomName, sleepPod, startPodEnv, supervisorPid, waitFor, type PodEnv } from '../helpers/pod.js';

let e: PodEnv;
const skipReason = process.getuid?.() !== 0 ? 'needs root' : undefined;

beforeAll(async () => {
  if (!skipReason) e = await startPodEnv();
}, 120_000);

afterAll(async () => {
  await e?.cleanup();
});

const podDir = (name: string) => path.join(e.runRoot, 'pods', `default_${name}`);

describe.skipIf(!!skipReason)('down FILE and up -d through one supervisor request', () => {
  it('removes the supervisor\'s pods, says "not running" for absent ones and takes down a foreground up\'s pod, in file order', async () => {
    const [a, fg, ghost] = [randomName(), randomName(), randomName()];
    const upA = e.podrun(['up', '-d', sleepPod(e, a)]);
    expect(upA.status, upA.stderr).toBe(0);
    const sup = supervisorPid(e.runRoot);
    expect(sup).toBeGreaterThan(0);
    // a pod owned by a foreground `podrun up`, not by the supervisor
    const global = ['--root', e.root, '--run-root', e.runRoot, '--log-root', e.logRoot, '--registry-config', path.join(e.dir, 'registries.yaml')];
    const child = spawn(BIN, [...global, 'up', sleepPod(e, fg)], { env: e.env, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('close', r));
    try {
      await waitFor('the foreground pod to run', () => {
        const r = e.podrun(['ps']);
        return r.stdout.split('\n').some((l) => l.includes(fg) && /Running/.test(l));
      }, 30_000, 200);
      const all = e.manifest(`${a}-all.yaml`, [a, ghost, fg].map((n) => fs.readFileSync(sleepPod(e, n), 'utf8')).join('---\n'));
      const r = e.podrun(['down', all]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe(`pod/${a} removed\npod/${ghost} not running\npod/${fg} removed\n`);
      expect(r.stderr).toBe('');
      for (const n of [a, fg]) expect(fs.existsSync(podDir(n))).toBe(false);
      expect(await exited).toBe(0); // the foreground up stopped its pod and ended
      expect(supervisorPid(e.runRoot)).toBe(sup); // the same supervisor answered
      const again = e.podrun(['down', all]);
      expect(again.stdout).toBe(`pod/${a} not running\npod/${ghost} not running\npod/${fg} not running\n`);
      expect(again.status).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    expect(mountsBelow(path.join(e.runRoot, 'pods'))).toEqual([]);
    expect(cgroupDirs(e.cgroupParent).flatMap((d) => fs.readdirSync(d).filter((x) => x.includes(a) || x.includes(fg)))).toEqual([]);
  }, 120_000);

  it('up -d with another --root is refused by the running supervisor; nothing is made', async () => {
    const keep = randomName();
    expect(e.podrun(['up', '-d', sleepPod(e, keep)]).status).toBe(0);
    try {
      const other = path.join(e.dir, 'other-root');
      const name = randomName();
      const r = e.podrun(['--root', other, 'up', '-d', sleepPod(e, name)]);
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        `podrun up: Cannot use the supervisor at "${path.join(e.runRoot, 'supervisor.sock')}": it runs with --root "${e.root}"\n` +
          'hint: use the same options, or another --run-root (a supervisor exits shortly after its last pod is down)\n',
      );
      expect(fs.existsSync(podDir(name))).toBe(false);
      expect(fs.existsSync(other)).toBe(false);
    } finally {
      expect(e.podrun(['down', keep]).stdout).toBe(`pod/${keep} removed\n`);
    }
  }, 60_000);
});
