/**
 * Pods through the TypeScript API (in-process supervisor): cgroup limits seen from the host
 * (memory limit → OOMKilled from the kernel's counter, CPU limit → throttling counters), exit
 * codes and each restart policy with a short back-off.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { parseManifests } from '../../src/spec/parse.js';
import { PodRuntime } from '../../src/runtime/api.js';
import { containerCgroupRel } from '../../src/runtime/sandbox.js';
import type { PodStatus } from '../../src/runtime/controller/status.js';
import { cgroupDirs, mountsBelow, randomName, startPodEnv, waitFor, type PodEnv } from '../helpers/pod.js';

let e: PodEnv;
let rt: PodRuntime;
const started: string[] = [];

beforeAll(async () => {
  e = await startPodEnv();
  rt = await PodRuntime.open({ root: e.root, runRoot: e.runRoot, logRoot: e.logRoot, network: false, cgroupParent: e.cgroupParent, backoff: { baseMs: 100, maxMs: 400 } });
}, 120_000);

afterAll(async () => {
  for (const k of started) await rt.downPod(k, { gracePeriodSeconds: 0 }).catch(() => {});
  await e?.cleanup();
});

async function up(yaml: string): Promise<string> {
  const set = parseManifests(yaml);
  const r = await rt.upPod(set.pods[0], { manifests: set });
  started.push(r.key);
  return r.key;
}

function pod(name: string, restartPolicy: string, containers: string): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  restartPolicy: ${restartPolicy}
  terminationGracePeriodSeconds: 1
  volumes: [{name: v, emptyDir: {}}]
  containers:
${containers}`;
}

const status = (key: string) => rt.podStatus(key) as PodStatus;

describe('resources', () => {
  it('puts the memory limit in the cgroup and reports an over-allocation as OOMKilled', async () => {
    const name = randomName();
    const key = await up(
      pod(
        name,
        'Never',
        `  - name: hog
    image: ${e.busybox}
    command: [sh, -c, "sleep 0.5; exec tail /dev/zero"]
    resources: {limits: {memory: 32Mi}}
`,
      ),
    );
    const rel = containerCgroupRel(rt.ctx, key, 'hog');
    const limitFile = rt.ctx.cgroups.version === 2 ? 'memory.max' : 'memory.limit_in_bytes';
    const memDir = await waitFor('the container cgroup', () => rt.ctx.cgroups.dirs(rel).find((d) => fs.existsSync(path.join(d, limitFile))), 20_000, 20);
    expect(fs.readFileSync(path.join(memDir, limitFile), 'utf8').trim()).toBe(String(32 * 1024 * 1024));
    const done = await rt.waitDone(key);
    const t = done.containerStatuses[0].state.terminated!;
    expect(t.reason).toBe('OOMKilled');
    expect(t.exitCode).toBe(137);
    expect(rt.ctx.cgroups.stats(rel).oomKills).toBeGreaterThan(0);
    expect(done.phase).toBe('Failed');
  });

  it('throttles a busy loop to its CPU limit (cgroup counters)', async () => {
    const name = randomName();
    const key = await up(
      pod(
        name,
        'Never',
        `  - name: spin
    image: ${e.busybox}
    command: [sh, -c, "end=$(( $(date +%s) + 2 )); while [ $(date +%s) -lt $end ]; do :; done"]
    resources: {limits: {cpu: 100m}}
`,
      ),
    );
    await rt.waitDone(key);
    const rel = containerCgroupRel(rt.ctx, key, 'spin');
    const s = rt.ctx.cgroups.stats(rel);
    expect(s.nrThrottled).toBeGreaterThan(0);
    // 100m over ~2 s of wall time: far below 2 s of CPU
    if (s.cpuUsageUsec !== undefined) expect(s.cpuUsageUsec).toBeLessThan(1_000_000);
  });
});

describe('exit codes and restart policies', () => {
  it('Never: keeps the exit code, no restart, pod Failed', async () => {
    const key = await up(pod(randomName(), 'Never', `  - {name: c, image: "${e.busybox}", command: [sh, -c, "exit 3"]}\n`));
    const s = await rt.waitDone(key);
    expect(s.phase).toBe('Failed');
    expect(s.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(s.containerStatuses[0].restartCount).toBe(0);
  });

  it('Never: exit 0 is Completed and the pod Succeeded', async () => {
    const key = await up(pod(randomName(), 'Never', `  - {name: c, image: "${e.busybox}", command: ["true"]}\n`));
    const s = await rt.waitDone(key);
    expect(s.phase).toBe('Succeeded');
    expect(s.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
  });

  it('OnFailure: restarts a failing container until it succeeds', async () => {
    const script = 'n=$(cat /v/n 2>/dev/null || echo 0); echo $((n+1)) > /v/n; echo run $n; [ $n -ge 2 ] && exit 0; exit 1';
    const key = await up(
      pod(randomName(), 'OnFailure', `  - name: c\n    image: ${e.busybox}\n    command: [sh, -c, "${script}"]\n    volumeMounts: [{name: v, mountPath: /v}]\n`),
    );
    const s = await rt.waitDone(key);
    expect(s.phase).toBe('Succeeded');
    expect(s.containerStatuses[0].restartCount).toBe(2);
    expect(s.containerStatuses[0].lastState.terminated).toMatchObject({ exitCode: 1 });
    // each run has its own log file: 0.log, 1.log, 2.log
    const dir = path.join(e.logRoot, key + '_' + rt.listPods().find((p) => p.key === key)!.uid, 'c');
    expect(fs.readdirSync(dir).sort()).toEqual(['0.log', '1.log', '2.log']);
    expect(fs.readFileSync(path.join(dir, '1.log'), 'utf8')).toContain('run 1');
  });

  it('Always: restarts even a container that exits 0, counting restarts', async () => {
    const key = await up(pod(randomName(), 'Always', `  - {name: c, image: "${e.busybox}", command: [sh, -c, "sleep 0.2"]}\n`));
    await waitFor('two restarts', () => status(key).containerStatuses[0].restartCount >= 2, 30_000);
    expect(status(key).phase).toBe('Running');
    await rt.downPod(key);
    expect(mountsBelow(path.join(e.runRoot, 'pods', key))).toEqual([]);
  });
});

describe('cleanup', () => {
  it('down of every pod leaves no mount and no cgroup', async () => {
    for (const k of started.splice(0)) await rt.downPod(k, { gracePeriodSeconds: 0 }).catch((err) => expect(String(err)).toContain('no such pod'));
    expect(mountsBelow(e.dir)).toEqual([]);
    expect(cgroupDirs(e.cgroupParent)).toEqual([]);
  });
});
