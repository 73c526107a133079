/**
 * `podrun gc`: removes what crashed pods left behind.
 *
 * 1. Pods whose owner process is gone (a SIGKILLed supervisor or `up`, a reboot of the
 *    supervisor's machine state): every container process killed, then every resource in their
 *    state.json removed in reverse (network, mounts, pins, cgroup, dirs).
 * 2. Pod dirs in the run root without a readable state file: mounts below unmounted, dir removed.
 * 3. Pod cgroups below the cgroup parent that no pod dir names: processes killed, cgroup removed.
 * 4. CNI attachments cached for pod uids that no pod (with a state.json) has: released
 *    through the network module's gcPodNetworks.
 * 5. Directories a dead process was still deleting in the background (the trash dirs).
 * Pods with a live owner are never touched.
 */
import fs from 'node:fs';
import path from 'node:path';
import { listPodKeys, readState, withPodLock, isAlive } from './state.js';
import { podRunDir } from './paths.js';
import { podContext, removeDir, teardownResources, trashDirs, type RuntimeContext } from './sandbox.js';

export interface GcReport {
  pods: string[];
  strayDirs: string[];
  cgroups: string[];
  /** Trash entries a dead process left half-deleted (removed now). */
  trash: string[];
  networks: string[];
  errors: string[];
}

export async function gcPods(ctx: RuntimeContext, opts: { skip?: Set<string> } = {}): Promise<GcReport> {
  const report: GcReport = { pods: [], strayDirs: [], cgroups: [], trash: [], networks: [], errors: [] };
  const uids = new Set<string>();
  for (const key of listPodKeys(ctx.paths)) {
    if (opts.skip?.has(key)) continue;
    try {
      await withPodLock(ctx.paths, key, async () => {
        let st;
        try {
          st = readState(ctx.paths, key);
        } catch {
          st = undefined;
        }
        if (st && isAlive(st.owner)) {
          uids.add(st.uid);
          return;
        }
        if (st) {
          await teardownResources(podContext(ctx, st), st);
          report.pods.push(key);
        } else {
          removeDir(ctx.sys, podRunDir(ctx.paths, key), ctx.events);
          report.strayDirs.push(key);
        }
      }, 5_000);
    } catch (err) {
      report.errors.push(`${key}: ${(err as Error).message}`);
      const st = safeRead(ctx, key);
      if (st) uids.add(st.uid);
    }
  }
  // cgroups nobody owns
  const live = new Set(listPodKeys(ctx.paths));
  for (const dir of ctx.cgroups.dirs(ctx.cgroupParent)) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      continue;
    }
    for (const n of names) {
      if (live.has(n) || report.cgroups.includes(n)) continue;
      const rel = `${ctx.cgroupParent}/${n}`;
      try {
        await ctx.cgroups.killAll(rel, 'SIGKILL');
        await ctx.cgroups.remove(rel);
        report.cgroups.push(n);
      } catch (err) {
        report.errors.push(`cgroup ${rel}: ${(err as Error).message}`);
      }
    }
    try {
      fs.rmdirSync(dir);
    } catch {
      /* in use or gone */
    }
  }
  // network attachments nobody owns: keep every uid with a state.json, re-read at each check so a
  // pod created while gc runs (its state is written before its CNI ADD) is never released
  if (fs.existsSync(path.join(ctx.paths.runRoot, 'cni'))) {
    try {
      const net = await import('./network/index.js');
      const keep = new LiveUids(ctx, uids);
      const r = await net.gcPodNetworks(ctx.network || { runRoot: ctx.paths.runRoot, events: ctx.events }, keep);
      report.networks.push(...r.removed);
      for (const f of r.failed) report.errors.push(`network ${f.id}: ${f.error.message}`);
    } catch (err) {
      report.errors.push(`network: ${(err as Error).message}`);
    }
  }
  // 5. what a process that died while deleting in the background left in the trash dirs
  //    ("<name>.<pid>.<random>", see removeDir); a live process still deleting is left to finish
  for (const trash of trashDirs(ctx.paths)) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(trash);
    } catch {
      continue;
    }
    for (const n of names) {
      const pid = Number(n.split('.').at(-2));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) continue;
      try {
        fs.rmSync(path.join(trash, n), { recursive: true, force: true });
        report.trash.push(path.join(trash, n));
      } catch (err) {
        report.errors.push(`${path.join(trash, n)}: ${(err as Error).message}`);
      }
    }
  }
  return report;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The uids of pods with a state file: those known already, plus any state file read now. */
export class LiveUids extends Set<string> {
  constructor(
    private readonly ctx: RuntimeContext,
    known: Iterable<string>,
  ) {
    super(known);
  }

  override has(uid: string): boolean {
    if (super.has(uid)) return true;
    for (const key of listPodKeys(this.ctx.paths)) {
      const st = safeRead(this.ctx, key);
      if (st) super.add(st.uid);
    }
    return super.has(uid);
  }
}

function safeRead(ctx: RuntimeContext, key: string) {
  try {
    return readState(ctx.paths, key);
  } catch {
    return undefined;
  }
}
