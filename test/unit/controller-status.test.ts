import { describe, expect, it } from 'vitest';
import { PodController } from '../../src/runtime/controller/controller.js';
import { readyColumn, statusColumn } from '../../src/runtime/controller/status.js';
import { FakeDriver, container, pod } from './controller-fakes.js';

const T = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, s)).toISOString().replace('.000Z', 'Z');
const IMAGE_ID = 'registry.test/busybox@sha256:' + 'a'.repeat(64);

describe('status in kubelet\'s shape', () => {
  it('a Job-like pod with an init container, field by field', async () => {
    const d = new FakeDriver({ setup: () => ({ exitAfterMs: 2000 }), job: () => ({ exitAfterMs: 5000, exitCode: 0 }) });
    const plan = pod({
      name: 'job',
      restartPolicy: 'Never',
      initContainers: [container('setup', { role: 'init' })],
      containers: [container('job', { resources: { requests: { cpuMillis: 100 }, limits: {} } })],
    });
    const c = new PodController(plan, d, { clock: d.clock, hostIP: '192.168.1.10' });
    c.start();
    const done = c.done();
    await d.clock.advance(10_000);
    const st = await done;
    // What kubelet 1.31 reports for this pod (containerID/imageID in podrun's scheme)
    expect(st).toEqual({
      phase: 'Succeeded',
      conditions: [
        { type: 'PodReadyToStartContainers', status: 'True', lastProbeTime: null, lastTransitionTime: T(0) },
        { type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: T(2) },
        { type: 'Ready', status: 'False', lastProbeTime: null, lastTransitionTime: T(7), reason: 'PodCompleted' },
        { type: 'ContainersReady', status: 'False', lastProbeTime: null, lastTransitionTime: T(7), reason: 'PodCompleted' },
        { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: T(0) },
      ],
      hostIP: '192.168.1.10',
      hostIPs: [{ ip: '192.168.1.10' }],
      podIP: '10.88.0.7',
      podIPs: [{ ip: '10.88.0.7' }],
      startTime: T(0),
      initContainerStatuses: [
        {
          name: 'setup',
          state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: T(0), finishedAt: T(2), containerID: 'podrun://setup-0' } },
          lastState: {},
          ready: true,
          restartCount: 0,
          image: 'registry.test/busybox:1.36',
          imageID: IMAGE_ID,
          containerID: 'podrun://setup-0',
          started: false,
        },
      ],
      containerStatuses: [
        {
          name: 'job',
          state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: T(2), finishedAt: T(7), containerID: 'podrun://job-0' } },
          lastState: {},
          ready: false,
          restartCount: 0,
          image: 'registry.test/busybox:1.36',
          imageID: IMAGE_ID,
          containerID: 'podrun://job-0',
          started: false,
        },
      ],
      qosClass: 'Burstable',
    });
    expect(statusColumn(st, plan)).toBe('Completed');
    expect(readyColumn(st, plan)).toBe('0/1');
  });

  it('a pod being created and a running pod', async () => {
    const d = new FakeDriver({});
    const plan = pod({ containers: [container('a', { resources: { requests: { cpuMillis: 500, memoryBytes: 1 << 26 }, limits: { cpuMillis: 500, memoryBytes: 1 << 26 } } })] });
    const c = new PodController(plan, d, { clock: d.clock });
    const s0 = c.status();
    expect(s0.phase).toBe('Pending');
    expect(s0.containerStatuses[0]).toEqual({ name: 'a', state: { waiting: { reason: 'ContainerCreating' } }, lastState: {}, ready: false, restartCount: 0, image: 'registry.test/busybox:1.36', imageID: '', started: false });
    c.start();
    await d.clock.advance(1000);
    const st = c.status();
    expect(st.phase).toBe('Running');
    expect(st.qosClass).toBe('Guaranteed');
    expect(st.containerStatuses[0]).toMatchObject({ ready: true, started: true, state: { running: { startedAt: T(0) } } });
    expect(st.conditions.map((x) => `${x.type}=${x.status}`)).toEqual(['PodReadyToStartContainers=True', 'Initialized=True', 'Ready=True', 'ContainersReady=True', 'PodScheduled=True']);
    expect(statusColumn(st, plan)).toBe('Running');
    expect(readyColumn(st, plan)).toBe('1/1');
    await c.stop();
  });

  it('kubectl-like STATUS column during init and crash loops', async () => {
    const d = new FakeDriver({ i1: () => ({ exitAfterMs: 0, exitCode: 1 }) });
    const plan = pod({ initContainers: [container('i1', { role: 'init' }), container('i2', { role: 'init' })] });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    await d.clock.advance(5000);
    expect(statusColumn(c.status(), plan)).toBe('Init:CrashLoopBackOff');
    await c.stop();
  });
});

describe('snapshot / restore', () => {
  it('a new controller re-adopts running containers and keeps restart counts, back-off and conditions', async () => {
    const d = new FakeDriver({ app: (run) => (run < 3 ? { exitAfterMs: 0, exitCode: 1 } : {}), side: () => ({}) });
    const plan = pod({ initContainers: [container('side', { role: 'sidecar' })] });
    const c1 = new PodController(plan, d, { clock: d.clock });
    c1.start();
    await d.clock.advance(12_000); // app: runs at 0, 0, 10 s; in back-off (20 s) now
    const snap = JSON.parse(JSON.stringify(c1.snapshot()));
    const before = c1.status();
    // the old supervisor dies (its timers die with it); a new one takes over the same driver
    const c2 = new PodController(plan, d, { clock: d.clock });
    (c1 as unknown as { terminal: boolean }).terminal = true;
    c2.restore(snap);
    expect(c2.status()).toEqual(before);
    expect(d.starts.filter((s) => s.name === 'side').length).toBe(1); // not restarted
    await d.clock.advance(20_000);
    expect(d.starts.filter((s) => s.name === 'app').map((s) => `${s.restartCount}@${s.at}`)).toEqual(['0@0', '1@0', '2@10000', '3@30000']);
    // the adopted sidecar's exit is still learnt
    d.exit('side', 0);
    await d.clock.advance(10);
    expect(c2.status().initContainerStatuses![0].restartCount).toBe(1);
    await c2.stop();
  });
});

describe('kubectl columns', () => {
  it('RESTARTS counts app and sidecar restarts with the time since the last one', async () => {
    const { restartsColumn, humanAge } = await import('../../src/runtime/controller/status.js');
    const d = new FakeDriver({ app: (run) => (run < 2 ? { exitAfterMs: 1000, exitCode: 1 } : {}) });
    const plan = pod({ initContainers: [container('side', { role: 'sidecar' })] });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    await d.clock.advance(30_000); // app exits at 1 s, 2 s; restarted at 1 s, 12 s
    expect(restartsColumn(c.status(), plan, d.clock.now())).toBe('2 (28s ago)');
    expect(humanAge(5 * 60_000 + 12_000)).toBe('5m12s');
    expect(humanAge(3 * 3600_000 + 4 * 60_000)).toBe('3h4m');
    await c.stop();
  });
});

describe('restore of a finished pod', () => {
  it('stops the sidecars a finished Job-like pod still ran when its supervisor died, preStop once', async () => {
    const d = new FakeDriver({ job: () => ({ exitAfterMs: 1000, exitCode: 0 }) });
    const plan = pod({
      restartPolicy: 'Never',
      initContainers: [container('proxy', { role: 'sidecar', lifecycle: { preStop: { kind: 'exec', command: ['drain'] } } })],
      containers: [container('job')],
    });
    const c1 = new PodController(plan, d, { clock: d.clock });
    c1.start();
    await d.clock.advance(500);
    const snap = c1.snapshot();
    snap.terminal = true; // as if the job had finished and the supervisor died before stopping proxy
    (c1 as unknown as { terminal: boolean }).terminal = true;
    d.exit('job', 0);
    const c2 = new PodController(plan, d, { clock: d.clock });
    c2.restore(JSON.parse(JSON.stringify(snap)));
    const stopped = c2.stop('down');
    await d.clock.advance(1000);
    const st = await stopped;
    expect(d.isRunning('proxy')).toBe(false);
    expect(d.log.filter((l) => l.startsWith('exec proxy'))).toHaveLength(1);
    expect(st.phase).toBe('Succeeded');
  });
});

describe('restore after a supervisor died inside driver.start', () => {
  it('adopts the run the driver knows instead of starting a second one with the same number', async () => {
    const d = new FakeDriver({});
    const plan = pod();
    const c1 = new PodController(plan, d, { clock: d.clock });
    let snap: ReturnType<PodController['snapshot']> | undefined;
    const realStart = d.start.bind(d);
    d.start = async (name, kind, rc) => {
      snap = JSON.parse(JSON.stringify(c1.snapshot())); // what state.json holds while start runs
      return realStart(name, kind, rc);
    };
    c1.start();
    await d.clock.advance(10);
    (c1 as unknown as { terminal: boolean }).terminal = true;
    expect(snap!.containers[0].pendingStart).toBe(0);
    d.start = realStart;
    const d2 = d as FakeDriver & { find?: (n: string, rc: number) => unknown };
    d2.find = (name, rc) => (name === 'app' && rc === 0 ? { id: 'app-0', pid: 1, startedAt: new Date(d.clock.now()) } : undefined);
    const c2 = new PodController(plan, d, { clock: d.clock });
    c2.restore(snap!);
    await d.clock.advance(10);
    expect(d.starts.length).toBe(1);
    expect(c2.status().containerStatuses[0]).toMatchObject({ containerID: 'podrun://app-0', restartCount: 0, state: { running: {} } });
    await c2.stop();
    expect(d.isRunning('app')).toBe(false);
  });
});
