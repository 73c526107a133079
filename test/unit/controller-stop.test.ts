import { describe, expect, it } from 'vitest';
import { PodController } from '../../src/runtime/controller/controller.js';
import { FakeDriver, collect, container, pod } from './controller-fakes.js';

const execHook = (...command: string[]) => ({ kind: 'exec' as const, command });

describe('stopping a pod', () => {
  it('runs preStop before the stop signal, and SIGKILLs at the grace deadline', async () => {
    const d = new FakeDriver({ app: () => ({ onStop: 'ignore' }) });
    const plan = pod({ terminationGracePeriodSeconds: 10, containers: [container('app', { lifecycle: { preStop: { kind: 'sleep', seconds: 3 } } })] });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    await d.clock.advance(100);
    const stopped = c.stop();
    await d.clock.advance(20_000);
    await stopped;
    const lines = d.log.filter((l) => /^(signal|exit)/.test(l));
    // preStop took 3 s of the 10 s, SIGTERM at 3.1 s, SIGKILL at the deadline (10.1 s)
    expect(lines).toEqual(['signal app SIGTERM @3100', 'signal app SIGKILL @10100', 'exit app 137 @10100']);
    expect(c.status().containerStatuses[0].state.terminated).toMatchObject({ exitCode: 137, reason: 'Error' });
  });

  it('runs preStop hooks of all app containers in parallel, with the image STOPSIGNAL', async () => {
    const d = new FakeDriver({});
    d.stopSignals.b = 'SIGQUIT';
    const plan = pod({
      containers: [container('a', { lifecycle: { preStop: execHook('/bin/drain') } }), container('b', { lifecycle: { preStop: { kind: 'sleep', seconds: 1 } } })],
    });
    const { events, sink } = collect();
    const c = new PodController(plan, d, { clock: d.clock, events: sink });
    c.start();
    await d.clock.advance(100);
    const stopped = c.stop();
    await d.clock.advance(5000);
    await stopped;
    const lines = d.log.filter((l) => /^(exec|signal)/.test(l));
    expect(lines).toEqual(['exec a /bin/drain @100', 'signal a SIGTERM @100', 'signal b SIGQUIT @1100']);
    expect(events.filter((e) => e.type === 'hook').map((e) => e.type === 'hook' && `${e.container}:${e.hook}:${e.ok}`)).toEqual(['a:preStop:true', 'b:preStop:true']);
  });

  it('grace period 0 kills at once without hooks', async () => {
    const d = new FakeDriver({ app: () => ({ onStop: 'ignore' }) });
    const plan = pod({ terminationGracePeriodSeconds: 0, containers: [container('app', { lifecycle: { preStop: execHook('x') } })] });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    await d.clock.advance(100);
    await c.stop();
    expect(d.log.filter((l) => /^(exec|signal)/.test(l))).toEqual(['signal app SIGKILL @100']);
  });

  it('stop() resolves done() and leaves no timer behind', async () => {
    const d = new FakeDriver({ app: () => ({ exitAfterMs: 0, exitCode: 1 }) });
    const c = new PodController(pod(), d, { clock: d.clock });
    c.start();
    await d.clock.advance(15_000); // in CrashLoopBackOff
    const done = c.done();
    await c.stop();
    await done;
    expect(d.clock.pending).toBe(0);
  });
});

describe('postStart', () => {
  it('a failing postStart kills the container (FailedPostStartHook) and it restarts per restartPolicy', async () => {
    const d = new FakeDriver({ app: (run) => ({ exec: () => ({ exitCode: run === 0 ? 1 : 0, output: 'boom' }) }) });
    const plan = pod({ terminationGracePeriodSeconds: 5, containers: [container('app', { lifecycle: { postStart: execHook('/init') } })] });
    const { events, sink } = collect();
    const c = new PodController(plan, d, { clock: d.clock, events: sink });
    c.start();
    await d.clock.advance(1000);
    expect(events).toContainEqual(expect.objectContaining({ type: 'hook', container: 'app', hook: 'postStart', ok: false, reason: 'FailedPostStartHook', message: 'boom' }));
    expect(d.starts.map((s) => s.restartCount)).toEqual([0, 1]);
    const st = c.status().containerStatuses[0];
    expect(st).toMatchObject({ restartCount: 1, ready: true, started: true, state: { running: {} } });
    expect(st.lastState.terminated).toMatchObject({ exitCode: 143, reason: 'Error' });
    await c.stop();
  });

  it('the container is not ready and the next container waits until postStart has finished', async () => {
    const d = new FakeDriver({});
    const plan = pod({ containers: [container('a', { lifecycle: { postStart: { kind: 'sleep', seconds: 5 } } }), container('b')] });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    await d.clock.advance(1000);
    expect(c.status().containerStatuses[0]).toMatchObject({ ready: false, state: { running: {} } });
    expect(d.starts.map((s) => s.name)).toEqual(['a']);
    await d.clock.advance(5000);
    expect(d.starts.map((s) => `${s.name}@${s.at}`)).toEqual(['a@0', 'b@5000']);
    expect(c.status().containerStatuses[0].ready).toBe(true);
    await c.stop();
  });
});

describe('starting app containers', () => {
  it('starts containers without a postStart hook before them at the same time; a hook holds the ones after it', async () => {
    const slow = () => ({ startDelayMs: 100 });
    const d = new FakeDriver({ a: slow, b: slow, c: slow, d: slow });
    const plan = pod({ containers: [container('a'), container('b', { lifecycle: { postStart: { kind: 'sleep', seconds: 5 } } }), container('c'), container('d')] });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    await d.clock.advance(1000);
    // a and b are created together; c and d wait for b's hook (5 s after b runs at 100 ms)
    expect(d.log.filter((l) => l.startsWith('start'))).toEqual(['start a#0 @0', 'start b#0 @0']);
    await d.clock.advance(5000);
    expect(d.log.filter((l) => l.startsWith('start'))).toEqual(['start a#0 @0', 'start b#0 @0', 'start c#0 @5100', 'start d#0 @5100']);
    await d.clock.advance(200);
    expect(c.status().containerStatuses.map((s) => Object.keys(s.state)[0])).toEqual(['running', 'running', 'running', 'running']);
    await c.stop();
  });
});

describe('activeDeadlineSeconds', () => {
  it('fails the pod with reason DeadlineExceeded and stops its containers', async () => {
    const d = new FakeDriver({});
    const plan = pod({ restartPolicy: 'Never', activeDeadlineSeconds: 30, terminationGracePeriodSeconds: 5 });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    const done = c.done();
    await d.clock.advance(29_000);
    expect(c.status().phase).toBe('Running');
    await d.clock.advance(2000);
    const st = await done;
    expect(st).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline' });
    expect(d.log.filter((l) => l.startsWith('signal'))).toEqual(['signal app SIGTERM @30000']);
    expect(st.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 143 });
  });
});
