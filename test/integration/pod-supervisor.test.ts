/**
 * The background supervisor: SIGKILL it while pods run; the containers keep running, a new
 * supervisor re-adopts them (and still learns exit codes), and `down` or `gc` after a kill
 * leaves nothing behind. Also bad input and concurrent `up`s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startTestRegistry } from '../helpers/registry.js';
import { pushBusybox } from '../helpers/images.js';
import { cgroupDirs, mountsBelow, processesMentioning, randomName, startPodEnv, supervisorPid, waitFor, type PodEnv } from '../helpers/pod.js';

let e: PodEnv;

beforeAll(async () => {
  e = await startPodEnv();
}, 120_000);

afterAll(async () => {
  await e?.cleanup();
});

function twoContainerPod(name: string, extra = ''): string {
  return e.manifest(
    `${name}.yaml`,
    `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: a, image: "${e.busybox}", command: [sh, -c, "while true; do sleep 1; done"]}
  - {name: b, image: "${e.busybox}", command: [sh, -c, "${extra || 'while true; do sleep 1; done'}"]}
`,
  );
}

function inspect(name: string) {
  const r = e.podrun(['inspect', name]);
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

function containerPids(name: string): number[] {
  return Object.values(inspect(name).containers as Record<string, { init?: { pid: number }; state: string }>)
    .filter((c) => c.state === 'running')
    .map((c) => c.init!.pid);
}

const alive = (pid: number) => fs.existsSync(`/proc/${pid}`) && !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));

describe('supervisor killed with SIGKILL', () => {
  it('keeps containers running; a new supervisor re-adopts them and learns their exit codes', async () => {
    const name = randomName();
    const file = twoContainerPod(name, 'sleep 4; exit 5');
    expect(e.podrun(['up', '-d', file]).status).toBe(0);
    const sup = supervisorPid(e.runRoot)!;
    expect(sup).toBeGreaterThan(0);
    const pids = containerPids(name);
    expect(pids).toHaveLength(2);
    process.kill(sup, 'SIGKILL');
    await waitFor('the supervisor to die', () => !alive(sup));
    expect(pids.every(alive)).toBe(true);
    expect(e.podrun(['ps']).stdout).toContain('(unsupervised)');
    // container b exits with 5 while nobody supervises; the next supervisor learns it
    await new Promise((r) => setTimeout(r, 4500));
    const again = e.podrun(['up', '-d', file]);
    expect(again.status, again.stderr).toBe(0);
    expect(supervisorPid(e.runRoot)).not.toBe(sup);
    const j = await waitFor('the exit of b to be known', () => {
      const st = inspect(name);
      const b = st.status.containerStatuses.find((c: { name: string }) => c.name === 'b');
      return b.restartCount >= 1 || b.state.terminated ? { st, b } : undefined;
    });
    const last = j.b.lastState.terminated ?? j.b.state.terminated;
    expect(last.exitCode).toBe(5);
    expect(alive(pids[0])).toBe(true); // a was never restarted
    expect(e.podrun(['down', name]).status).toBe(0);
  });

  it('down after a kill leaves nothing', async () => {
    const name = randomName();
    expect(e.podrun(['up', '-d', twoContainerPod(name)]).status).toBe(0);
    const pids = containerPids(name);
    process.kill(supervisorPid(e.runRoot)!, 'SIGKILL');
    const r = e.podrun(['down', name]);
    expect(r.status, r.stderr).toBe(0);
    expect(pids.some(alive)).toBe(false);
    expect(mountsBelow(e.dir)).toEqual([]);
    expect(cgroupDirs(e.cgroupParent)).toEqual([]);
    await waitFor('no podrun process left', () => processesMentioning(e.dir).length === 0, 10_000);
  });

  it('gc after a kill leaves nothing', async () => {
    const name = randomName();
    expect(e.podrun(['up', '-d', twoContainerPod(name)]).status).toBe(0);
    const pids = containerPids(name);
    process.kill(supervisorPid(e.runRoot)!, 'SIGKILL');
    const r = e.podrun(['gc']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`removed pod default/${name}`);
    expect(pids.some(alive)).toBe(false);
    expect(mountsBelow(e.dir)).toEqual([]);
    expect(cgroupDirs(e.cgroupParent)).toEqual([]);
    expect(fs.readdirSync(path.join(e.runRoot, 'pods'))).toEqual([]);
    await waitFor('no podrun process left', () => processesMentioning(e.dir).length === 0, 10_000);
  });
});

describe('gc and monitors', () => {
  it('gc SIGKILLs the native monitors (by pid and start time) even when they cannot exit by themselves', async () => {
    const name = randomName();
    expect(e.podrun(['up', '-d', twoContainerPod(name)]).status).toBe(0);
    const recs = Object.values(inspect(name).containers as Record<string, { monitor?: { pid: number; startTime: number }; state: string }>).filter((c) => c.state === 'running');
    const monitors = recs.map((c) => c.monitor!.pid);
    expect(monitors.length).toBe(2);
    process.kill(supervisorPid(e.runRoot)!, 'SIGKILL');
    // stopped monitors never notice their container's death: only a SIGKILL from gc ends them
    for (const m of monitors) process.kill(m, 'SIGSTOP');
    try {
      const r = e.podrun(['gc']);
      expect(r.status, r.stderr).toBe(0);
      await waitFor('monitors gone', () => !monitors.some(alive), 3_000);
    } finally {
      for (const m of monitors) {
        try {
          if (alive(m)) process.kill(m, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    expect(cgroupDirs(e.cgroupParent)).toEqual([]);
  });
});

describe('bad input', () => {
  it('refuses a missing image with a clear error and leaves nothing', () => {
    const name = randomName();
    const f = e.manifest(`${name}.yaml`, `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}}\nspec:\n  containers:\n  - {name: a, image: "${e.reg.host}/library/nope:1"}\n`);
    const r = e.podrun(['up', '-d', f]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/nope/);
    expect(fs.existsSync(path.join(e.runRoot, 'pods', `default_${name}`))).toBe(false);
  });

  it('an imagePullPolicy Always check that fails (registry gone) removes the sandbox it overlapped with', async () => {
    const reg = await startTestRegistry();
    let stopped = false;
    try {
      await pushBusybox(reg.host);
      const image = `${reg.host}/library/busybox:latest`;
      expect(e.podrun(['pull', '-q', image]).status).toBe(0);
      await reg.stop();
      stopped = true;
      const name = randomName();
      const file = e.manifest(`${name}.yaml`, `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  containers:
  - {name: a, image: "${image}", command: [sleep, "60"]}
`);
      const r = e.podrun(['up', '-d', file]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(reg.host);
      expect(fs.existsSync(path.join(e.runRoot, 'pods', `default_${name}`))).toBe(false);
      expect(cgroupDirs(e.cgroupParent).filter((d) => fs.existsSync(path.join(d, `default_${name}`)))).toEqual([]);
      expect(mountsBelow(e.dir)).toEqual([]);
      expect(e.podrun(['ps', '-a']).stdout).not.toContain(name);
    } finally {
      if (!stopped) await reg.stop();
    }
  });

  it('refuses an unknown volume before anything is created', () => {
    const name = randomName();
    const f = e.manifest(
      `${name}.yaml`,
      `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}}\nspec:\n  containers:\n  - name: a\n    image: "${e.busybox}"\n    volumeMounts: [{name: ghost, mountPath: /x}]\n`,
    );
    const r = e.podrun(['up', '-d', f]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ghost');
    expect(fs.existsSync(path.join(e.runRoot, 'pods', `default_${name}`))).toBe(false);
  });

  it('two concurrent ups of one pod create exactly one sandbox', async () => {
    const name = randomName();
    const f = twoContainerPod(name);
    const [a, b] = await Promise.all([e.podrunAsync(['up', '-d', f]), e.podrunAsync(['up', '-d', f])]);
    expect(a.status, a.stderr).toBe(0);
    expect(b.status, b.stderr).toBe(0);
    expect([a.stdout, b.stdout].filter((o) => o.includes('unchanged'))).toHaveLength(1);
    const st = inspect(name);
    expect(st.resources.filter((r: { kind: string }) => r.kind === 'pins')).toHaveLength(1);
    expect(Object.keys(st.containers)).toHaveLength(2);
    expect(e.podrun(['down', name]).status).toBe(0);
    expect(mountsBelow(e.dir)).toEqual([]);
  });
});

describe('deleting a pod\'s files', () => {
  const trashes = () => [path.join(e.runRoot, 'trash'), path.join(e.root, 'trash'), path.join(e.logRoot, '.podrun-trash')];
  const entries = () => trashes().flatMap((t) => (fs.existsSync(t) ? fs.readdirSync(t).map((n) => path.join(t, n)) : []));

  it('down moves them out of the way at once and deletes them in the background', async () => {
    const name = randomName();
    expect(e.podrun(['up', '-d', twoContainerPod(name)]).status).toBe(0);
    const uid = inspect(name).uid as string;
    const dirs = [path.join(e.runRoot, 'pods', `default_${name}`), path.join(e.root, 'pods', `default_${name}_${uid}`), path.join(e.logRoot, `default_${name}_${uid}`)];
    for (const d of dirs) expect(fs.existsSync(d), d).toBe(true);
    const r = e.podrun(['down', name]);
    expect(r.status, r.stderr).toBe(0);
    for (const d of dirs) expect(fs.existsSync(d), d).toBe(false);
    await waitFor('trash emptied', () => entries().length === 0 || undefined, 10_000);
  });

  it('gc deletes what a dead process left half-deleted in the trash, not what a live one is deleting', async () => {
    const dead = spawnSync('true').pid!; // exited and reaped: its pid names no process
    const live = process.pid;
    fs.mkdirSync(path.join(e.root, 'trash', `default_x_1.${dead}.abc`, 'containers', 'a'), { recursive: true });
    fs.writeFileSync(path.join(e.root, 'trash', `default_x_1.${dead}.abc`, 'containers', 'a', 'f'), 'x');
    fs.mkdirSync(path.join(e.runRoot, 'trash', `default_y.${live}.def`), { recursive: true });
    try {
      const r = e.podrun(['gc']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(`removed unfinished deletion ${path.join(e.root, 'trash', `default_x_1.${dead}.abc`)}`);
      expect(entries()).toEqual([path.join(e.runRoot, 'trash', `default_y.${live}.def`)]);
    } finally {
      fs.rmSync(path.join(e.runRoot, 'trash', `default_y.${live}.def`), { recursive: true, force: true });
    }
  });
});
