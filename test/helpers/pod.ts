/**
 * A per-file harness for pod tests: one local registry with the busybox fixture, a temp
 * --root/--run-root/--log-root, a podrun-test-<random> cgroup parent, the CLI (bin/podrun) with
 * those options, and a cleanup that removes every pod, mount, cgroup and process left behind.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestRegistry, type TestRegistry } from './registry.js';
import { pushBusybox } from './images.js';
import { lockHolder } from '../../src/runtime/state.js';

export const BIN = fileURLToPath(new URL('../../bin/podrun', import.meta.url));

export interface PodEnv {
  reg: TestRegistry;
  /** "127.0.0.1:PORT/library/busybox:latest" */
  busybox: string;
  dir: string;
  root: string;
  runRoot: string;
  logRoot: string;
  cgroupParent: string;
  env: NodeJS.ProcessEnv;
  /** The CLI with this environment's global options. */
  podrun(args: string[], opts?: { timeoutMs?: number; input?: string }): SpawnSyncReturns<string>;
  podrunAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }>;
  /** Writes a manifest into the temp dir and returns its path. */
  manifest(name: string, yaml: string): string;
  cleanup(): Promise<void>;
}

export function randomName(prefix = 'podrun-test'): string {
  return `${prefix}-${crypto.randomBytes(3).toString('hex')}`;
}

export async function startPodEnv(): Promise<PodEnv> {
  const reg = await startTestRegistry();
  await pushBusybox(reg.host);
  const busybox = `${reg.host}/library/busybox:latest`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-'));
  const root = path.join(dir, 'root');
  const runRoot = path.join(dir, 'run');
  const logRoot = path.join(dir, 'log');
  const cgroupParent = randomName();
  const env = {
    ...process.env,
    PODRUN_NETWORK: 'none',
    PODRUN_CGROUP_PARENT: cgroupParent,
    PODRUN_BACKOFF_BASE_MS: '200',
  };
  const global = ['--root', root, '--run-root', runRoot, '--log-root', logRoot, '--registry-config', path.join(dir, 'registries.yaml')];
  const e: PodEnv = {
    reg,
    busybox,
    dir,
    root,
    runRoot,
    logRoot,
    cgroupParent,
    env,
    podrun(args, o = {}) {
      return spawnSync(BIN, [...global, ...args], { env, encoding: 'utf8', timeout: o.timeoutMs ?? 60_000, input: o.input });
    },
    podrunAsync(args) {
      return new Promise((resolve) => {
        const c = spawn(BIN, [...global, ...args], { env });
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (d) => (stdout += d));
        c.stderr.on('data', (d) => (stderr += d));
        c.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    },
    manifest(name, yaml) {
      const f = path.join(dir, name);
      fs.writeFileSync(f, yaml);
      return f;
    },
    async cleanup() {
      // the supervisor first (by pid and start time: a pid file left by a killed supervisor names
      // a pid that may belong to anything by now), then whatever pods are left, then the cgroup parent
      const pid = supervisorPid(runRoot);
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      e.podrun(['gc']);
      for (const d of cgroupDirs(cgroupParent)) killAndRemoveCgroup(d);
      umountBelow(dir);
      await reg.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return e;
}

/** Every directory of the cgroup parent in every hierarchy (v1) or the unified one (v2). */
export function cgroupDirs(parent: string): string[] {
  const out: string[] = [];
  for (const h of fs.readdirSync('/sys/fs/cgroup')) {
    const d = path.join('/sys/fs/cgroup', h, parent);
    if (fs.existsSync(d)) out.push(d);
  }
  const v2 = path.join('/sys/fs/cgroup', parent);
  if (fs.existsSync(path.join('/sys/fs/cgroup', 'cgroup.controllers')) && fs.existsSync(v2)) out.push(v2);
  return out;
}

function killAndRemoveCgroup(dir: string): void {
  const walk = (d: string): string[] => [
    ...fs.readdirSync(d, { withFileTypes: true }).filter((x) => x.isDirectory()).flatMap((x) => walk(path.join(d, x.name))),
    d,
  ];
  for (let i = 0; i < 50; i++) {
    let left = 0;
    for (const d of walk(dir)) {
      for (const pid of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        left++;
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    if (!left) break;
    spawnSync('sleep', ['0.05']);
  }
  for (const d of walk(dir)) {
    try {
      fs.rmdirSync(d);
    } catch {
      /* reported by the test's own checks */
    }
  }
}

/** Mount points below `dir` in this mount namespace. */
export function mountsBelow(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m && (m === dir || m.startsWith(dir + '/')));
}

function umountBelow(dir: string): void {
  for (const m of mountsBelow(dir).sort((a, b) => b.length - a.length)) spawnSync('umount', ['-l', m]);
}

/** Processes whose command line mentions `needle` (e.g. the temp dir: monitors, supervisor). */
export function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes(needle)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Slow machines (the TCG guest of scripts/vm-test sets 10) stretch every deadline by this factor. */
export const TIME_SCALE = Number(process.env.PODRUN_TEST_TIME_SCALE) || 1;

export async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs * TIME_SCALE;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The run root's live supervisor (pid checked against its start time), if any. */
export function supervisorPid(runRoot: string): number | undefined {
  return lockHolder(path.join(runRoot, 'supervisor.pid'));
}

/** A manifest of a one-container pod that sleeps an hour and stops at once. */
export function sleepPod(e: PodEnv, name: string): string {
  return e.manifest(
    `${name}.yaml`,
    `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {name: c, image: "${e.busybox}", command: [sleep, "3600"]}
`,
  );
}
