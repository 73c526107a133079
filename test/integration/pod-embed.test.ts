/** examples/embed.ts runs against the real kernel and a local registry, and cleans up. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { main } from '../../examples/embed.js';
import { cgroupDirs, mountsBelow, startPodEnv, type PodEnv } from '../helpers/pod.js';

let e: PodEnv;
beforeAll(async () => {
  e = await startPodEnv();
}, 120_000);
afterAll(async () => {
  await e?.cleanup();
});

it('runs the embedding example: a pod, execSync, status, stop', async () => {
  const lines: string[] = [];
  const r = await main({ image: e.busybox, root: e.root, runRoot: e.runRoot, logRoot: e.logRoot, cgroupParent: e.cgroupParent, log: (l) => lines.push(l) });
  expect(r.phase).toBe('Running');
  expect(r.execOutput).toBe('hello from embedded');
  expect(lines).toContain('container main: ready=true restarts=0');
  expect(lines.some((l) => l.startsWith('event: main'))).toBe(true);
  expect(lines[lines.length - 1]).toBe('pod default_embedded removed');
  expect(mountsBelow(e.dir)).toEqual([]);
  expect(cgroupDirs(e.cgroupParent)).toEqual([]);
});
