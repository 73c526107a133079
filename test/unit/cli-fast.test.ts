/**
 * `podrun up -d FILE` and `podrun down FILE` against a running supervisor take one request
 * (dist/cli/fast.cjs): no `ping` first, the supervisor refuses another --root itself. A fake
 * supervisor on a unix socket in a temp run root records what the CLI (bin/podrun, built) sends
 * and answers as the real one does; the output is what a user sees. No root needed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// the built module, as bin/podrun loads it (vite does not transform .cts sources)
const { parseSimple } = createRequire(import.meta.url)('../../dist/cli/fast.cjs') as typeof import('../../src/cli/fast.cjs');

const BIN = fileURLToPath(new URL('../../bin/podrun', import.meta.url));

type Req = { op: string } & Record<string, unknown>;

let dir: string | undefined;
let server: net.Server | undefined;
afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  server = dir = undefined;
});

/** A fake supervisor in a new temp run root; `answer` returns the JSON answer of each request. */
async function fakeSupervisor(answer: (req: Req) => object): Promise<{ runRoot: string; requests: Req[]; file: string }> {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-fast-'));
  const runRoot = path.join(dir, 'run');
  fs.mkdirSync(runRoot);
  const requests: Req[] = [];
  server = net.createServer((c) => {
    let buf = '';
    c.on('data', (d) => {
      buf += d;
      if (!buf.includes('\n')) return;
      const req = JSON.parse(buf) as Req;
      requests.push(req);
      c.end(JSON.stringify(answer(req)) + '\n');
    });
  });
  await new Promise<void>((r) => server!.listen(path.join(runRoot, 'supervisor.sock'), r));
  const file = path.join(dir, 'pod.yaml');
  fs.writeFileSync(file, 'apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n');
  return { runRoot, requests, file };
}

function podrun(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(BIN, args, { env: { PATH: process.env.PATH, ...env } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const running = { warnings: ['pod.yaml: spec.nodeSelector is ignored on one node'], pods: [{ key: 'default_x', name: 'x', namespace: 'default', created: true, status: { containerStatuses: [{}, {}] } }] };

describe('up -d with a supervisor running', () => {
  it('sends one up-text request naming the caller\'s paths and settings, and prints the pods', async () => {
    const s = await fakeSupervisor(() => running);
    const r = await podrun(['--root', 'rel-root', '--run-root', s.runRoot, 'up', '-d', s.file, '--network', 'none'], { PODRUN_LOG_ROOT: '/l', PODRUN_CGROUP_PARENT: 'podrun-test-x' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('pod/x running (2 containers)\n');
    expect(r.stderr).toBe('warning: pod.yaml: spec.nodeSelector is ignored on one node\n');
    expect(s.requests.map((q) => q.op)).toEqual(['up-text']);
    expect(s.requests[0]).toMatchObject({
      source: s.file,
      replace: false,
      root: path.resolve('rel-root'), // absolute: the supervisor runs in /
      logRoot: '/l',
      registryConfig: '/etc/podrun/registries.yaml',
      settings: { cgroupParent: 'podrun-test-x', network: 'none' },
    });
  });

  it('prints the refusal of a supervisor started with another --root, without a ping first', async () => {
    const s = await fakeSupervisor(() => ({
      error: { code: 'ECONFLICT', message: 'Cannot use the supervisor at "/run/podrun/supervisor.sock": it runs with --root "/var/lib/podrun"', hint: 'use the same options, or another --run-root' },
    }));
    const r = await podrun(['--root', '/other', '--run-root', s.runRoot, 'up', '-d', s.file]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('podrun up: Cannot use the supervisor at "/run/podrun/supervisor.sock": it runs with --root "/var/lib/podrun"\nhint: use the same options, or another --run-root\n');
    expect(s.requests.map((q) => q.op)).toEqual(['up-text']);
  });

  it('says "unchanged" and reports a pod that did not start, with exit 1', async () => {
    const s = await fakeSupervisor(() => ({
      warnings: [],
      pods: [
        { key: 'default_x', name: 'x', namespace: 'default', created: false },
        { key: 'default_y', name: 'y', namespace: 'default', created: true, error: { code: 'EINTERNAL', message: 'Cannot run pod "y": container a: CrashLoopBackOff', hint: 'podrun logs y' } },
      ],
    }));
    const r = await podrun(['--run-root', s.runRoot, 'up', '--replace', '-d', s.file]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('pod/x unchanged (already running with this spec)\n');
    expect(r.stderr).toBe('pod/y: Cannot run pod "y": container a: CrashLoopBackOff\nhint: podrun logs y\n');
    expect(s.requests[0].replace).toBe(true);
  });
});

describe('down FILE with a supervisor running', () => {
  it('sends one down-text request and prints each pod in the file\'s order', async () => {
    const s = await fakeSupervisor(() => ({
      pods: [
        { key: 'default_x', name: 'x', result: 'removed' },
        { key: 'default_y', name: 'y', result: 'not-running' },
      ],
    }));
    const r = await podrun(['--run-root', s.runRoot, 'down', '--grace-period', '3', s.file]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('pod/x removed\npod/y not running\n');
    expect(r.stderr).toBe('');
    expect(s.requests).toEqual([{ op: 'down-text', text: fs.readFileSync(s.file, 'utf8'), source: s.file, gracePeriodSeconds: 3 }]);
  });

  it('prints a manifest error with exit 1', async () => {
    const s = await fakeSupervisor(() => ({ error: { code: 'EINVAL_SPEC', message: `Cannot read manifest "pod.yaml": bad indentation` } }));
    const r = await podrun(['--run-root', s.runRoot, 'down', s.file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('podrun down: Cannot read manifest "pod.yaml": bad indentation\n');
  });

  it('falls back to pod-names with a supervisor from before down-text', async () => {
    const s = await fakeSupervisor((q) =>
      q.op === 'pod-names' ? { pods: [{ namespace: 'default', name: 'x' }] } : { error: { code: 'EINVAL_ARG', message: `Cannot handle request "${q.op}": unknown operation` } },
    );
    const r = await podrun(['--run-root', s.runRoot, 'down', s.file]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('pod/x not running\n');
    expect(s.requests.map((q) => q.op)).toEqual(['down-text', 'pod-names']);
  });
});

describe('forms the fast path leaves to main.ts', () => {
  it('accepts only plain up -d and down with global options', () => {
    expect(parseSimple(['--root', '/r', 'up', '-d', 'f.yaml'])?.verb).toBe('up');
    expect(parseSimple(['up', '--detach', '--replace', '--network=none', 'f.yaml'])?.values).toEqual({ detach: true, replace: true, network: 'none' });
    expect(parseSimple(['down', '--grace-period=0', 'f.yaml'])?.values).toEqual({ 'grace-period': '0' });
    for (const argv of [
      ['up', 'f.yaml'], // foreground
      ['up', '-d', '--wait', 'f.yaml'],
      ['up', '-d', '--help', 'f.yaml'],
      ['--trace', 'up', '-d', 'f.yaml'],
      ['-d', 'up', 'f.yaml'], // a verb's option before the verb
      ['up', '-dh', 'f.yaml'],
      ['up', '-d', 'a.yaml', 'b.yaml'],
      ['down', 'a.yaml', 'b.yaml'],
      ['down', '--grace-period', '-1', 'f.yaml'],
      ['--root', '/a', '--root', '/b', 'up', '-d', 'f.yaml'], // repeated
      ['--root', 'up', '-d', 'f.yaml'].slice(0, 2),
      ['--network', 'bridge', 'up', '-d', 'f.yaml'],
      ['up', '-d', '--', 'f.yaml'],
      ['ps'],
    ]) {
      expect(parseSimple(argv), argv.join(' ')).toBeUndefined();
    }
  });
});
