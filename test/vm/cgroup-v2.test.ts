// Smoke test of the cgroup-v2 guest that scripts/vm-test boots: proves the runner gives the
// privileged suite a cgroup-v2-only machine before any podrun code is involved.
// On the host (v1 hybrid) it skips itself; with PODRUN_EXPECT_CGROUP=2 (set by the guest) a wrong
// environment fails instead of skipping.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmdirSync, statfsSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const CGROUP_ROOT = '/sys/fs/cgroup';
const CGROUP2_SUPER_MAGIC = 0x63677270;
const expectV2 = process.env.PODRUN_EXPECT_CGROUP === '2';

function words(file: string): string[] {
  return readFileSync(file, 'utf8').trim().split(/\s+/).filter(Boolean);
}

function keyed(file: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
    const [key, value] = line.split(' ');
    map.set(key, Number(value));
  }
  return map;
}

describe.skipIf(!expectV2)('cgroup v2 guest (PODRUN_EXPECT_CGROUP=2)', () => {
  const created: string[] = [];
  const enabled: string[] = [];

  afterEach(() => {
    // Undo in reverse: our cgroups (deepest first), then the controllers we switched on.
    for (const dir of created.splice(0).reverse()) {
      if (existsSync(dir)) rmdirSync(dir);
    }
    for (const name of enabled.splice(0).reverse()) {
      try {
        writeFileSync(join(CGROUP_ROOT, 'cgroup.subtree_control'), `-${name}`);
      } catch {
        // Another test's cgroup may use it by now; leaving it on is harmless in the guest.
      }
    }
  });

  function makeCgroup(controllers: string[]): string {
    const active = words(join(CGROUP_ROOT, 'cgroup.subtree_control'));
    for (const name of controllers) {
      if (active.includes(name)) continue;
      writeFileSync(join(CGROUP_ROOT, 'cgroup.subtree_control'), `+${name}`);
      enabled.push(name);
    }
    const dir = join(CGROUP_ROOT, `podrun-test-${randomBytes(4).toString('hex')}`);
    mkdirSync(dir);
    created.push(dir);
    return dir;
  }

  it('mounts cgroup2 alone at /sys/fs/cgroup with cpu, memory and pids', () => {
    expect(statfsSync(CGROUP_ROOT).type).toBe(CGROUP2_SUPER_MAGIC);
    expect(words(join(CGROUP_ROOT, 'cgroup.controllers'))).toEqual(
      expect.arrayContaining(['cpu', 'memory', 'pids']),
    );
    // Only the unified hierarchy: one "0::<path>" line, no v1 controller lines.
    expect(readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')).toEqual([
      expect.stringMatching(/^0::\//),
    ]);
  });

  it('creates and removes a podrun-test cgroup with memory.max, cpu.max and pids.max', () => {
    const dir = makeCgroup(['cpu', 'memory', 'pids']);
    expect(words(join(dir, 'cgroup.controllers'))).toEqual(
      expect.arrayContaining(['cpu', 'memory', 'pids']),
    );
    writeFileSync(join(dir, 'memory.max'), '32M');
    writeFileSync(join(dir, 'cpu.max'), '20000 100000');
    writeFileSync(join(dir, 'pids.max'), '16');
    expect(readFileSync(join(dir, 'memory.max'), 'utf8').trim()).toBe(String(32 * 1024 * 1024));
    expect(readFileSync(join(dir, 'cpu.max'), 'utf8').trim()).toBe('20000 100000');
    expect(readFileSync(join(dir, 'pids.max'), 'utf8').trim()).toBe('16');
    rmdirSync(dir);
    expect(existsSync(dir)).toBe(false);
  });

  it('OOM-kills a process that outgrows memory.max and counts it in memory.events', async () => {
    const dir = makeCgroup(['memory']);
    writeFileSync(join(dir, 'memory.max'), '32M');
    if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
    // The shell moves itself into the cgroup, then becomes `tail`, which buffers /dev/zero
    // (one endless line) until the kernel kills it.
    const child = spawn('sh', ['-c', `echo $$ > ${join(dir, 'cgroup.procs')} && exec tail /dev/zero`], {
      stdio: 'ignore',
    });
    const signal = await new Promise<NodeJS.Signals | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (_code, sig) => resolve(sig));
    });
    expect(signal).toBe('SIGKILL');
    expect(keyed(join(dir, 'memory.events')).get('oom_kill')).toBeGreaterThanOrEqual(1);
  });
});
