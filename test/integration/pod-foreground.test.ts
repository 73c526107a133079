/**
 * `podrun up FILE` in the foreground: prefixed logs, Ctrl-C stops the pod gracefully, a
 * Job-like pod ends the command with its result, `podrun down` from elsewhere stops it too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, cgroupDirs, mountsBelow, randomName, startPodEnv, waitFor, type PodEnv } from '../helpers/pod.js';

let e: PodEnv;
let global: string[];

beforeAll(async () => {
  e = await startPodEnv();
  global = ['--root', e.root, '--run-root', e.runRoot, '--log-root', e.logRoot, '--registry-config', path.join(e.dir, 'registries.yaml')];
}, 120_000);

afterAll(async () => {
  await e?.cleanup();
});

function job(name: string, codeB: number): string {
  return e.manifest(
    `${name}.yaml`,
    `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  restartPolicy: Never
  containers:
  - {name: first, image: "${e.busybox}", command: [sh, -c, "echo hello from first"]}
  - {name: second, image: "${e.busybox}", command: [sh, -c, "echo hello from second; exit ${codeB}"]}
`,
  );
}

function service(name: string): string {
  return e.manifest(
    `${name}.yaml`,
    `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  terminationGracePeriodSeconds: 10
  containers:
  - {name: srv, image: "${e.busybox}", command: [sh, -c, "trap 'echo got TERM; exit 0' TERM; echo serving; while true; do sleep 0.1; done"]}
`,
  );
}

function startUp(file: string) {
  const child = spawn(BIN, [...global, 'up', file], { env: e.env });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  return { child, done, out: () => out, err: () => err };
}

const nothingLeft = (name: string) => {
  expect(fs.existsSync(path.join(e.runRoot, 'pods', `default_${name}`))).toBe(false);
  expect(mountsBelow(e.dir)).toEqual([]);
  expect(cgroupDirs(e.cgroupParent)).toEqual([]);
};

describe('podrun logs', () => {
  it('shows the previous run after a restart and follows new lines', async () => {
    const name = randomName();
    const f = e.manifest(
      `${name}.yaml`,
      `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  terminationGracePeriodSeconds: 0
  volumes: [{name: v, emptyDir: {}}]
  containers:
  - name: c
    image: ${e.busybox}
    command: [sh, -c, "n=$(cat /v/n 2>/dev/null || echo 0); echo $((n+1)) > /v/n; echo run $n; sleep 0.3; exit 1"]
    volumeMounts: [{name: v, mountPath: /v}]
`,
    );
    const up = e.podrun(['up', '-d', f]);
    expect(up.status, up.stderr).toBe(0);
    try {
      await waitFor('a restart', () => {
        const r = e.podrun(['logs', name]);
        return r.status === 0 && /run [1-9]/.test(r.stdout);
      }, 30_000, 300);
      // the container keeps restarting: the previous run is always an earlier one
      const prev = e.podrun(['logs', '--previous', name]);
      expect(prev.status, prev.stderr).toBe(0);
      expect(prev.stdout).toMatch(/^run \d+\n$/);
      const after = e.podrun(['logs', name]).stdout;
      const m = /run (\d+)/.exec(after);
      if (m) expect(Number(m[1])).toBeGreaterThan(Number(/run (\d+)/.exec(prev.stdout)![1]));
      // -f moves on to the next restart's file
      const child = spawn(BIN, [...global, 'logs', '-f', name], { env: e.env });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      try {
        await waitFor('two more runs followed', () => (out.match(/run \d+/g) ?? []).length >= 3, 30_000);
      } finally {
        child.kill('SIGINT');
      }
    } finally {
      expect(e.podrun(['down', name]).status).toBe(0);
    }
  });
});

describe('podrun up in the foreground', () => {
  it('runs a Job-like pod to completion with prefixed logs and exits 0', () => {
    const name = randomName();
    const r = e.podrun(['up', job(name, 0)]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^first +\| hello from first$/m);
    expect(r.stdout).toMatch(/^second +\| hello from second$/m);
    expect(r.stderr).toContain('Succeeded');
    nothingLeft(name);
  });

  it('exits non-zero when the pod Failed', () => {
    const name = randomName();
    const r = e.podrun(['up', job(name, 3)]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Failed');
    nothingLeft(name);
  });

  it('stops the pod gracefully on Ctrl-C (SIGINT)', async () => {
    const name = randomName();
    const up = startUp(service(name));
    await waitFor('the container to serve', () => up.out().includes('serving'), 30_000);
    const t = Date.now();
    up.child.kill('SIGINT');
    expect(await up.done).toBe(0);
    expect(Date.now() - t).toBeLessThan(8000); // the trap ended it, not the 10 s grace period
    expect(up.out()).toMatch(/srv \| got TERM/);
    nothingLeft(name);
  });

  it('is stopped by `podrun down` from another shell', async () => {
    const name = randomName();
    const up = startUp(service(name));
    await waitFor('the container to serve', () => up.out().includes('serving'), 30_000);
    const r = e.podrun(['down', name]);
    expect(r.status, r.stderr).toBe(0);
    expect(await up.done).toBe(0);
    nothingLeft(name);
  });
});
