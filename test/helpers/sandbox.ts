/**
 * A pod-like sandbox for kernel-layer tests, built from the pieces alone (no runtime): a private
 * temp dir, pinned net/ipc/uts namespaces, a `podrun-test-<random>` cgroup parent, a busybox
 * rootfs, and a `container()` factory returning ShimPlans. `cleanup()` removes every process,
 * mount, pin and cgroup it made, pass or fail.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { realSyscalls } from '../../src/linux/ffi.js';
import { processStartTime } from '../../src/linux/proc.js';
import { openCgroups, type Cgroups, type CgroupLimits } from '../../src/linux/cgroups.js';
import { umountRecursive } from '../../src/linux/mounts.js';
import { pinNamespaces, unpin, type PinnedNamespaces } from '../../src/linux/namespaces.js';
import {
  DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  readExitStatus,
  startContainerProcess,
  waitExitStatus,
  type ExitStatus,
  type ShimPlan,
  type ShimProcess,
  type StartedProcess,
} from '../../src/runtime/shim.js';
import { makeBusyboxRootfs, removeRootfs } from './rootfs.js';

export const sys = realSyscalls;

export interface ContainerOptions {
  process?: Partial<ShimProcess>;
  plan?: Partial<ShimPlan>;
  limits?: CgroupLimits;
}

export interface TestContainer {
  name: string;
  plan: ShimPlan;
  cgroup: string;
  started?: StartedProcess;
}

export class TestSandbox {
  readonly id = `podrun-test-${crypto.randomBytes(4).toString('hex')}`;
  readonly base: string;
  readonly rootfs: string;
  readonly pins: PinnedNamespaces;
  readonly cg: Cgroups;
  readonly hostname: string;
  readonly containers: TestContainer[] = [];
  readonly pidsToKill = new TrackedPids();

  constructor(opts: { hostname?: string } = {}) {
    this.base = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-'));
    this.hostname = opts.hostname ?? this.id;
    this.rootfs = makeBusyboxRootfs(this.base);
    this.cg = openCgroups();
    fs.mkdirSync(path.join(this.base, 'run'));
    this.pins = pinNamespaces(sys, path.join(this.base, 'run', 'ns'), { hostname: this.hostname, privateRoot: path.join(this.base, 'run') });
    this.cg.create(`${this.id}/pod`);
  }

  defaultProcess(args: string[]): ShimProcess {
    return {
      args,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'],
      cwd: '/',
      uid: 0,
      gid: 0,
      additionalGids: [0],
      noNewPrivileges: false,
      capabilities: { bounding: DEFAULT_CAPABILITIES, effective: DEFAULT_CAPABILITIES, permitted: DEFAULT_CAPABILITIES, inheritable: [], ambient: [] },
    };
  }

  container(name: string, args: string[], opts: ContainerOptions = {}): TestContainer {
    const dir = path.join(this.base, 'containers', name);
    for (const d of ['state', 'upper', 'work', 'rootfs']) fs.mkdirSync(path.join(dir, d), { recursive: true });
    const rel = `${this.id}/pod/${name}`;
    this.cg.create(rel);
    if (opts.limits) this.cg.setLimits(rel, opts.limits);
    const plan: ShimPlan = {
      containerId: name,
      stateDir: path.join(dir, 'state'),
      logPath: path.join(dir, '0.log'),
      rootfs: { lowerDirs: [this.rootfs], upperDir: path.join(dir, 'upper'), workDir: path.join(dir, 'work'), mountPoint: path.join(dir, 'rootfs'), readOnly: false },
      namespaces: { net: this.pins.net, ipc: this.pins.ipc, uts: this.pins.uts },
      cgroupProcs: this.cg.procsFiles(rel),
      cgroupMount: this.cg.mountPlan(),
      mounts: [],
      maskedPaths: DEFAULT_MASKED_PATHS,
      readonlyPaths: DEFAULT_READONLY_PATHS,
      sysctls: [],
      ...opts.plan,
      process: { ...this.defaultProcess(args), ...opts.process },
    };
    const c: TestContainer = { name, plan, cgroup: rel };
    this.containers.push(c);
    return c;
  }

  async start(c: TestContainer): Promise<StartedProcess> {
    c.started = await startContainerProcess(c.plan);
    this.pidsToKill.push(c.started.monitorPid, c.started.pid);
    return c.started;
  }

  async run(c: TestContainer, timeoutMs = 20_000): Promise<ExitStatus> {
    await this.start(c);
    const st = await waitExitStatus(c.plan.stateDir, timeoutMs);
    if (!st) throw new Error(`container ${c.name} did not exit within ${timeoutMs} ms`);
    await waitGone(c.started!.monitorPid);
    return st;
  }

  exit(c: TestContainer): ExitStatus | undefined {
    return readExitStatus(c.plan.stateDir);
  }

  /** CRI log lines of a container. */
  log(c: TestContainer): { time: string; stream: string; tag: string; text: string }[] {
    if (!fs.existsSync(c.plan.logPath)) return [];
    return fs
      .readFileSync(c.plan.logPath, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const m = /^(\S+) (stdout|stderr) ([FP]) (.*)$/.exec(l);
        if (!m) throw new Error(`not a CRI log line: ${JSON.stringify(l)}`);
        return { time: m[1], stream: m[2], tag: m[3], text: m[4] };
      });
  }

  stdout(c: TestContainer): string[] {
    return this.log(c).filter((l) => l.stream === 'stdout').map((l) => l.text);
  }

  async cleanup(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (f: () => unknown) => {
      try {
        await f();
      } catch (err) {
        errors.push(err);
      }
    };
    // by pid AND start time: on this machine pids wrap at 32768, and a test's process that ended
    // early may have passed its pid on to anything (once it was the CI's own shell)
    for (const pid of this.pidsToKill.alive()) await attempt(() => killIfAlive(pid));
    await attempt(() => this.cg.killAll(this.id));
    await attempt(() => this.pidsToKill.waitGone());
    await attempt(() => this.cg.remove(this.id));
    await attempt(() => unpin(sys, this.pins.dir));
    await attempt(() => umountRecursive(sys, this.base));
    await attempt(() => removeRootfs(this.base));
    if (errors.length) throw errors[0];
  }
}

/**
 * Processes a test started, each remembered by pid and /proc start time at push(): one that is
 * gone is never signalled or waited for again, whoever has its pid now.
 */
export class TrackedPids implements Iterable<number> {
  private readonly list: { pid: number; start: number | undefined }[] = [];

  push(...pids: number[]): number {
    for (const pid of pids) this.list.push({ pid, start: processStartTime(pid) });
    return this.list.length;
  }

  *[Symbol.iterator](): Iterator<number> {
    for (const e of this.list) yield e.pid;
  }

  /** The pushed processes that still run (same pid, same start time, not a zombie). */
  alive(): number[] {
    return this.list.filter((e) => e.start !== undefined && processStartTime(e.pid) === e.start && isAlive(e.pid)).map((e) => e.pid);
  }

  async waitGone(timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs * (Number(process.env.PODRUN_TEST_TIME_SCALE) || 1);
    while (this.alive().length) {
      if (Date.now() > end) throw new Error(`processes ${this.alive().join(', ')} still alive after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

export function killIfAlive(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  // kill(0) and kill(-1) signal whole process groups: the test runner's own, or everything
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`refusing to signal pid ${pid}`);
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
}

export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export async function waitGone(pid: number, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs * (Number(process.env.PODRUN_TEST_TIME_SCALE) || 1);
  while (isAlive(pid)) {
    if (Date.now() > end) throw new Error(`process ${pid} still alive after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Whether the cgroup-v2 expectation applies: PODRUN_EXPECT_CGROUP=2 makes a v1 host a failure. */
export function expectedCgroupVersion(): 1 | 2 | undefined {
  const v = process.env.PODRUN_EXPECT_CGROUP;
  return v === '2' ? 2 : v === '1' ? 1 : undefined;
}

/** Poll `check` every 20 ms until it returns true (the VM runs 7-16x slower than the host). */
export async function eventually(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs * (Number(process.env.PODRUN_TEST_TIME_SCALE) || 1);
  while (!check()) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms: ${check.toString()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
