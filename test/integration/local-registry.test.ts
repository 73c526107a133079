/**
 * scripts/local-registry.mjs (quick start and labs) on a random port with temp data and pid file:
 * start, status, seed (from dist/, so `npm run build` must have run), a pull of what it seeded, stop.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { parseReference } from '../../src/image/reference.js';
import { openRemote } from '../../src/image/registry/index.js';
import { freePort } from '../helpers/registry.js';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../..');
const script = join(repo, 'scripts/local-registry.mjs');
const built = existsSync(join(repo, 'dist/image/builder.js'));

let dir: string;
let env: NodeJS.ProcessEnv;
let addr: string;

async function lr(verb: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [script, verb], { env, timeout: 30_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'podrun-test-localreg-'));
  addr = `127.0.0.1:${await freePort()}`;
  env = {
    ...process.env,
    PODRUN_LOCAL_REGISTRY_ADDR: addr,
    PODRUN_LOCAL_REGISTRY_DIR: join(dir, 'data'),
    PODRUN_LOCAL_REGISTRY_PID: join(dir, 'run/local-registry.pid'),
  };
});
afterAll(async () => {
  // Stop by the pid the script recorded, pass or fail.
  try {
    const pid = Number(readFileSync(join(dir, 'run/local-registry.pid'), 'utf8'));
    if (pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('docker-registry')) process.kill(pid, 'SIGKILL');
  } catch {
    /* not running */
  }
  await rm(dir, { recursive: true, force: true });
});

test.skipIf(!built)('start, status, seed, pull, stop (needs dist/: npm run build)', async () => {
  expect(await lr('status')).toMatchObject({ code: 3 });
  const started = await lr('start');
  expect(started.code).toBe(0);
  expect(started.out).toContain(`local registry running on http://${addr}`);
  expect((await lr('start')).out).toContain('already running');
  expect(await lr('status')).toMatchObject({ code: 0 });

  const seeded = await lr('seed');
  expect(seeded.code).toBe(0);
  const m = /pushed (\S+)@(sha256:[0-9a-f]{64})/.exec(seeded.out);
  expect(m?.[1]).toBe(`${addr}/library/busybox:latest`);
  expect(seeded.out).toContain(`registries:\n  docker.io:\n    mirrors:\n      - http://${addr}\n`);

  // What it seeded is what a docker.io pull through that mirror gets.
  const r = openRemote(parseReference('busybox'), { config: { registries: { 'docker.io': { mirrors: [`http://${addr}`] } } }, credentials: () => undefined });
  try {
    expect((await r.getManifest('latest')).digest).toBe(m![2]);
  } finally {
    await r.close();
  }

  const stopped = await lr('stop');
  expect(stopped.out).toMatch(/local registry stopped \(pid \d+\)/);
  expect(await lr('status')).toMatchObject({ code: 3 });
  expect(existsSync(join(dir, 'run/local-registry.pid'))).toBe(false);
});
