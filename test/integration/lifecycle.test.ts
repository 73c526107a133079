/**
 * Real pods through the runtime (PodRuntime + PodDriver + native shim) driven by the lifecycle
 * controller: init containers in order, a native sidecar serving HTTP with busybox httpd, an
 * httpGet readiness probe from podrun into the pod's network namespace, preStop before SIGTERM,
 * Job-like pods' final phase, ConfigMap/Secret env and volumes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { PodRuntime } from '../../src/runtime/api.js';
import { parseManifests } from '../../src/spec/index.js';
import type { PodStatus } from '../../src/runtime/controller/status.js';
import { startPodEnv, type PodEnv } from '../helpers/pod.js';

const root = process.getuid?.() === 0;
let env: PodEnv | undefined;
let image = '';
let tmp = '';
let rt: PodRuntime | undefined;
const keys: string[] = [];

async function until(what: string, fn: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms * (Number(process.env.PODRUN_TEST_TIME_SCALE) || 1);
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function up(yaml: string): Promise<string> {
  const set = parseManifests(yaml, { source: 'test.yaml' });
  const r = await rt!.upPod(set.pods[0], { manifests: set });
  keys.push(r.key);
  return r.key;
}

const cond = (s: PodStatus | undefined, t: string) => s?.conditions.find((c) => c.type === t)?.status;

describe.skipIf(!root)('pod lifecycle on the real runtime (root)', () => {
  beforeAll(async () => {
    env = await startPodEnv();
    image = env.busybox;
    tmp = env.dir;
    rt = await PodRuntime.open({
      root: env.root,
      runRoot: env.runRoot,
      logRoot: env.logRoot,
      registryConfig: path.join(env.dir, 'registries.yaml'),
      cgroupParent: env.cgroupParent,
      network: false,
      backoff: { baseMs: 200, maxMs: 1000 },
      events: process.env.PODRUN_TEST_DEBUG ? (e) => void (e.type !== 'trace' && console.log(JSON.stringify(e))) : undefined,
    });
  });

  afterAll(async () => {
    for (const k of keys) await rt?.downPod(k, { gracePeriodSeconds: 0 }).catch(() => {});
    await env?.cleanup();
  });

  it('init containers in order, a sidecar gating on its startupProbe, httpGet readiness, preStop before SIGTERM', async () => {
    const out = path.join(tmp, 'out1');
    fs.mkdirSync(out);
    const key = await up(`
apiVersion: v1
kind: Pod
metadata: { name: life1 }
spec:
  terminationGracePeriodSeconds: 5
  volumes:
  - { name: out, hostPath: { path: ${out}, type: Directory } }
  - { name: www, emptyDir: {} }
  initContainers:
  - name: init1
    image: ${image}
    command: [sh, -c, 'echo init1 >> /out/order; echo hello > /www/index.html']
    volumeMounts: [{ name: out, mountPath: /out }, { name: www, mountPath: /www }]
  - name: web
    image: ${image}
    restartPolicy: Always
    command: [sh, -c, 'echo web >> /out/order; trap "exit 0" TERM; httpd -f -p 8080 -h /www & wait']
    startupProbe: { httpGet: { path: /index.html, port: 8080 }, periodSeconds: 1, failureThreshold: 30 }
    volumeMounts: [{ name: out, mountPath: /out }, { name: www, mountPath: /www }]
  - name: init2
    image: ${image}
    command: [sh, -c, 'wget -q -O - http://127.0.0.1:8080/index.html >> /out/order']
    volumeMounts: [{ name: out, mountPath: /out }]
  containers:
  - name: app
    image: ${image}
    command: [sh, -c, 'echo app >> /out/order; trap "echo term >> /out/order; exit 0" TERM; while true; do sleep 0.1; done']
    readinessProbe: { httpGet: { path: /index.html, port: 8080 }, periodSeconds: 1 }
    lifecycle: { preStop: { exec: { command: [sh, -c, 'echo prestop >> /out/order'] } } }
    volumeMounts: [{ name: out, mountPath: /out }]
`);
    await until('Ready', () => cond(rt!.podStatus(key), 'Ready') === 'True');
    const st = rt!.podStatus(key)!;
    expect(st.phase).toBe('Running');
    expect(st.initContainerStatuses!.map((s) => [s.name, s.ready, s.started])).toEqual([
      ['init1', true, false],
      ['web', true, true],
      ['init2', true, false],
    ]);
    expect(st.containerStatuses[0]).toMatchObject({ name: 'app', ready: true, started: true, restartCount: 0 });
    await rt!.downPod(key);
    keys.splice(keys.indexOf(key), 1);
    expect(fs.readFileSync(path.join(out, 'order'), 'utf8')).toBe('init1\nweb\nhello\napp\nprestop\nterm\n');
  });

  it('an exec readiness probe and an httpGet liveness probe on a real container: unhealthy → killed → restarted', async () => {
    const key = await up(`
apiVersion: v1
kind: Pod
metadata: { name: live1 }
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: ${image}
    command: [sh, -c, 'mkdir -p /tmp/w; echo ok > /tmp/w/h; touch /tmp/ready; trap "exit 0" TERM; httpd -f -p 8081 -h /tmp/w & sleep 2; rm /tmp/w/h; wait']
    readinessProbe: { exec: { command: [cat, /tmp/ready] }, periodSeconds: 1 }
    livenessProbe: { httpGet: { path: /h, port: 8081 }, periodSeconds: 1, failureThreshold: 2, terminationGracePeriodSeconds: 1 }
`);
    await until('Ready', () => rt!.podStatus(key)?.containerStatuses[0].ready === true);
    await until('a restart', () => (rt!.podStatus(key)?.containerStatuses[0].restartCount ?? 0) >= 1, 30_000);
    const s = rt!.podStatus(key)!.containerStatuses[0];
    expect(s.lastState.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' }); // it trapped SIGTERM
    await rt!.downPod(key, { gracePeriodSeconds: 1 });
    keys.splice(keys.indexOf(key), 1);
  });

  it('a Job-like pod finishes Succeeded or Failed; OnFailure restarts until success', async () => {
    const job = (name: string, policy: string, script: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  restartPolicy: ${policy}
  containers:
  - { name: main, image: ${image}, command: [sh, -c, '${script}'] }
`;
    const ok = await up(job('job-ok', 'Never', 'exit 0'));
    const bad = await up(job('job-bad', 'Never', 'exit 3'));
    const out = path.join(tmp, 'tries');
    fs.mkdirSync(out);
    const retry = await up(
      job('job-retry', 'OnFailure', 'echo x >> /dev/shm/n; test $(wc -l < /dev/shm/n) -ge 3').replace("'exit 0'", ''),
    );
    const [sOk, sBad, sRetry] = await Promise.all([rt!.waitDone(ok), rt!.waitDone(bad), rt!.waitDone(retry)]);
    expect(sOk.phase).toBe('Succeeded');
    expect(sOk.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(sBad.phase).toBe('Failed');
    expect(sBad.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(sRetry.phase).toBe('Succeeded');
    expect(sRetry.containerStatuses[0].restartCount).toBe(2);
  });

  it('ConfigMap and Secret: env, envFrom with prefix, volumes with items and modes', async () => {
    const out = path.join(tmp, 'out3');
    fs.mkdirSync(out);
    const key = await up(`
apiVersion: v1
kind: ConfigMap
metadata: { name: cfg }
data: { color: blue, size: "3" }
---
apiVersion: v1
kind: Secret
metadata: { name: sec }
stringData: { token: s3cret }
---
apiVersion: v1
kind: Pod
metadata: { name: cfgpod }
spec:
  restartPolicy: Never
  volumes:
  - { name: out, hostPath: { path: ${out}, type: Directory } }
  - { name: c, configMap: { name: cfg, items: [{ key: color, path: sub/colour }], defaultMode: 0640 } }
  - { name: s, secret: { secretName: sec, defaultMode: 0400 } }
  containers:
  - name: main
    image: ${image}
    command: [sh, -c, 'echo "$COLOR $CFG_size $TOKEN" > /out/env; cat /c/sub/colour /s/token > /out/files; stat -c %a /c/sub/colour /s/token >> /out/files']
    env:
    - { name: COLOR, valueFrom: { configMapKeyRef: { name: cfg, key: color } } }
    - { name: TOKEN, valueFrom: { secretKeyRef: { name: sec, key: token } } }
    envFrom: [{ prefix: CFG_, configMapRef: { name: cfg } }]
    volumeMounts: [{ name: out, mountPath: /out }, { name: c, mountPath: /c }, { name: s, mountPath: /s }]
`);
    const st = await rt!.waitDone(key);
    expect(st.phase).toBe('Succeeded');
    expect(fs.readFileSync(path.join(out, 'env'), 'utf8')).toBe('blue 3 s3cret\n');
    expect(fs.readFileSync(path.join(out, 'files'), 'utf8')).toBe('blues3cret640\n400\n'); // values have no newline of their own
  });
});

describe.skipIf(!root)('the CLI over the controller: up exit status, wait, status (root)', () => {
  let e: PodEnv;
  beforeAll(async () => {
    e = await startPodEnv();
  });
  afterAll(async () => {
    await e?.cleanup();
  });

  const job = (name: string, script: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  restartPolicy: Never
  containers:
  - { name: main, image: ${e.busybox}, command: [sh, -c, '${script}'] }
`;

  it('podrun up of a Job-like pod exits 0 when it Succeeded and non-zero when it Failed', async () => {
    const ok = e.podrun(['up', e.manifest('ok.yaml', job('cli-ok', 'echo done'))]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout + ok.stderr).toContain('done');
    const bad = e.podrun(['up', e.manifest('bad.yaml', job('cli-bad', 'exit 4'))]);
    expect(bad.status).not.toBe(0);
  });

  it('podrun up -d, podrun wait --for=condition=Ready, podrun status -o json, podrun wait --for=delete', async () => {
    const f = e.manifest('svc.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: cli-svc }
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: ${e.busybox}
    command: [sh, -c, 'mkdir -p /w; echo ok > /w/index.html; trap "exit 0" TERM; httpd -f -p 8082 -h /w & wait']
    readinessProbe: { httpGet: { path: /index.html, port: 8082 }, periodSeconds: 1 }
`);
    const up = e.podrun(['up', '-d', f]);
    expect(up.status, up.stderr).toBe(0);
    const w = e.podrun(['wait', '--for=condition=Ready', '--timeout', '20s', 'cli-svc']);
    expect(w.status, w.stderr).toBe(0);
    expect(w.stdout).toBe('pod/cli-svc condition met (Ready=True)\n');
    const st = JSON.parse(e.podrun(['status', '-o', 'json', 'cli-svc']).stdout);
    expect(st.phase).toBe('Running');
    expect(st.containerStatuses[0]).toMatchObject({ name: 'web', ready: true, started: true, restartCount: 0, state: { running: {} } });
    expect(st.conditions.find((c: { type: string }) => c.type === 'ContainersReady').status).toBe('True');
    const gone = e.podrunAsync(['wait', '--for=delete', '--timeout', '30s', 'cli-svc']);
    const down = e.podrun(['down', 'cli-svc']);
    expect(down.status, down.stderr).toBe(0);
    expect((await gone).status).toBe(0);
  });
});
