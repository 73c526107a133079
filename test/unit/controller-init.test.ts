import { describe, expect, it } from 'vitest';
import { PodController } from '../../src/runtime/controller/controller.js';
import { FakeDriver, container, pod } from './controller-fakes.js';

const exec = (...command: string[]) => ({ kind: 'exec' as const, command });
const probe = (handler: ReturnType<typeof exec>, over = {}) => ({ handler, initialDelaySeconds: 0, periodSeconds: 1, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3, ...over });

describe('init containers', () => {
  it('run one at a time, in order, each to success, before the app containers', async () => {
    const d = new FakeDriver({ i1: () => ({ exitAfterMs: 1000 }), i2: () => ({ exitAfterMs: 2000 }) });
    const plan = pod({ initContainers: [container('i1', { role: 'init' }), container('i2', { role: 'init' })], containers: [container('a'), container('b')] });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    await d.clock.advance(10);
    let st = c.status();
    expect(st.phase).toBe('Pending');
    expect(st.initContainerStatuses!.map((s) => Object.keys(s.state)[0])).toEqual(['running', 'waiting']);
    expect(st.initContainerStatuses![1].state.waiting?.reason).toBe('PodInitializing');
    expect(st.containerStatuses.map((s) => s.state.waiting?.reason)).toEqual(['PodInitializing', 'PodInitializing']);
    expect(st.conditions.find((x) => x.type === 'Initialized')).toMatchObject({ status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [i1 i2]' });
    await d.clock.advance(5000);
    expect(d.starts.map((s) => `${s.name}@${s.at}`)).toEqual(['i1@0', 'i2@1000', 'a@3000', 'b@3000']);
    st = c.status();
    expect(st.phase).toBe('Running');
    expect(st.conditions.find((x) => x.type === 'Initialized')).toMatchObject({ status: 'True' });
    expect(st.initContainerStatuses![0]).toMatchObject({ ready: true, started: false, state: { terminated: { exitCode: 0, reason: 'Completed' } } });
    await c.stop();
  });

  it('a failing init container is retried with back-off under OnFailure/Always and blocks the app', async () => {
    const d = new FakeDriver({ i1: (run) => ({ exitAfterMs: 100, exitCode: run < 2 ? 1 : 0 }) });
    const plan = pod({ restartPolicy: 'Always', initContainers: [container('i1', { role: 'init' })] });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    await d.clock.advance(1000);
    expect(c.status().initContainerStatuses![0].state.waiting?.reason).toBe('CrashLoopBackOff');
    expect(c.status().phase).toBe('Pending');
    expect(d.isRunning('app')).toBe(false);
    await d.clock.advance(20_000);
    expect(d.starts.map((s) => `${s.name}#${s.restartCount}@${s.at}`)).toEqual(['i1#0@0', 'i1#1@100', 'i1#2@10200', 'app#0@10300']);
    await c.stop();
  });

  it('under restartPolicy Never a failing init container fails the pod; app containers never start', async () => {
    const d = new FakeDriver({ i1: () => ({ exitAfterMs: 100, exitCode: 7 }) });
    const plan = pod({ restartPolicy: 'Never', initContainers: [container('i1', { role: 'init' }), container('i2', { role: 'init' })] });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    const done = c.done();
    await d.clock.advance(60_000);
    const st = await done;
    expect(st.phase).toBe('Failed');
    expect(d.starts.map((s) => s.name)).toEqual(['i1']);
    expect(st.initContainerStatuses![0].state.terminated).toMatchObject({ exitCode: 7, reason: 'Error' });
    expect(st.initContainerStatuses![1].state.waiting?.reason).toBe('PodInitializing');
    expect(st.containerStatuses[0].state.waiting?.reason).toBe('PodInitializing');
    expect(st.conditions.find((x) => x.type === 'Initialized')).toMatchObject({ status: 'False', reason: 'ContainersNotInitialized' });
    expect(st.conditions.find((x) => x.type === 'Ready')).toMatchObject({ status: 'False', reason: 'PodFailed' });
  });
});

describe('native sidecars (init containers with restartPolicy Always)', () => {
  it('start in order, gate the next container on their startupProbe, and keep running', async () => {
    let healthy = false;
    const d = new FakeDriver({
      s1: () => ({ exec: () => ({ exitCode: healthy ? 0 : 1, output: '' }) }),
      i1: () => ({ exitAfterMs: 100 }),
    });
    const plan = pod({
      initContainers: [container('s1', { role: 'sidecar', startupProbe: probe(exec('ready'), { failureThreshold: 30 }) }), container('s2', { role: 'sidecar' }), container('i1', { role: 'init' })],
      containers: [container('app')],
    });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    await d.clock.advance(2500);
    expect(d.starts.map((s) => s.name)).toEqual(['s1']);
    expect(c.status().initContainerStatuses![0]).toMatchObject({ started: false, ready: false, state: { running: {} } });
    healthy = true;
    await d.clock.advance(550); // the probe ticks every second: 3 s is the first success
    expect(d.starts.map((s) => `${s.name}:${s.kind}`)).toEqual(['s1:sidecar', 's2:sidecar', 'i1:init']);
    await d.clock.advance(200);
    expect(d.starts.map((s) => `${s.name}@${s.at}`)).toEqual(['s1@0', 's2@3000', 'i1@3000', 'app@3100']);
    const st = c.status();
    expect(st.phase).toBe('Running');
    expect(st.initContainerStatuses!.map((s) => [s.name, s.started, s.ready])).toEqual([
      ['s1', true, true],
      ['s2', true, true],
      ['i1', false, true],
    ]);
    expect(st.conditions.find((x) => x.type === 'Ready')?.status).toBe('True');
    await c.stop();
  });

  it('are restarted whatever the pod restartPolicy, without blocking the app', async () => {
    const d = new FakeDriver({ s1: (run) => (run === 0 ? { exitAfterMs: 5000, exitCode: 0 } : {}) });
    const plan = pod({ restartPolicy: 'Never', initContainers: [container('s1', { role: 'sidecar' })] });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    await d.clock.advance(6000);
    expect(d.starts.map((s) => `${s.name}#${s.restartCount}@${s.at}`)).toEqual(['s1#0@0', 'app#0@0', 's1#1@5000']);
    await c.stop();
  });

  it('stop after the app containers, in reverse order', async () => {
    const d = new FakeDriver({});
    const plan = pod({
      initContainers: [container('s1', { role: 'sidecar' }), container('s2', { role: 'sidecar' })],
      containers: [container('a'), container('b')],
    });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    await d.clock.advance(100);
    await c.stop();
    const stops = d.log.filter((l) => l.startsWith('signal') || l.startsWith('exit')).map((l) => l.split(' @')[0]);
    expect(stops).toEqual(['signal a SIGTERM', 'exit a 143', 'signal b SIGTERM', 'exit b 143', 'signal s2 SIGTERM', 'exit s2 143', 'signal s1 SIGTERM', 'exit s1 143']);
  });

  it("don't keep a Job-like pod alive: it finishes Succeeded once the app containers are done", async () => {
    const d = new FakeDriver({ job: () => ({ exitAfterMs: 3000, exitCode: 0 }) });
    const plan = pod({ restartPolicy: 'Never', initContainers: [container('proxy', { role: 'sidecar' })], containers: [container('job')] });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    const done = c.done();
    await d.clock.advance(10_000);
    const st = await done;
    expect(st.phase).toBe('Succeeded');
    expect(d.isRunning('proxy')).toBe(false);
    expect(st.initContainerStatuses![0].state.terminated).toMatchObject({ exitCode: 143 });
    expect(st.conditions.find((x) => x.type === 'Ready')).toMatchObject({ status: 'False', reason: 'PodCompleted' });
  });
});
