import { describe, expect, it } from 'vitest';
import { PodController } from '../../src/runtime/controller/controller.js';
import { Backoff } from '../../src/runtime/controller/backoff.js';
import { FakeDriver, collect, container, pod } from './controller-fakes.js';

describe('restart back-off (kubelet)', () => {
  it('restarts a crashing container at once, then after 10, 20, 40 … s, capped at 5 min', async () => {
    const d = new FakeDriver({ app: () => ({ exitAfterMs: 0, exitCode: 1 }) });
    const c = new PodController(pod(), d, { clock: d.clock });
    c.start();
    await d.clock.advance(1_300_000);
    const at = d.starts.map((s) => s.at);
    const gaps = at.slice(1).map((t, i) => (t - at[i]) / 1000);
    expect(gaps.slice(0, 9)).toEqual([0, 10, 20, 40, 80, 160, 300, 300, 300]);
    expect(d.starts.map((s) => s.restartCount).slice(0, 4)).toEqual([0, 1, 2, 3]);
    await c.stop();
  });

  it('shows CrashLoopBackOff with kubelet\'s message and the last termination while waiting', async () => {
    const d = new FakeDriver({ app: () => ({ exitAfterMs: 1000, exitCode: 3 }) });
    const c = new PodController(pod(), d, { clock: d.clock });
    c.start();
    await d.clock.advance(2500); // run 0 exits at 1 s, run 1 starts at once and exits at 2 s
    const s = c.status().containerStatuses[0];
    expect(s.restartCount).toBe(1);
    expect(s.state.waiting).toEqual({ reason: 'CrashLoopBackOff', message: `back-off 10s restarting failed container=app pod=web_default(${pod().uid})` });
    expect(s.lastState.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(c.status().phase).toBe('Running');
    await c.stop();
  });

  it('uses the configured base, cap and reset for tests', async () => {
    const d = new FakeDriver({ app: () => ({ exitAfterMs: 0, exitCode: 1 }) });
    const c = new PodController(pod(), d, { clock: d.clock, backoff: { baseMs: 100, maxMs: 400 } });
    c.start();
    await d.clock.advance(2000);
    const at = d.starts.map((s) => s.at);
    expect(at.slice(1, 7).map((t, i) => t - at[i])).toEqual([0, 100, 200, 400, 400, 400]);
    await c.stop();
  });

  it('starts over after the container ran longer than resetAfter (10 min)', async () => {
    let long = false;
    const d = new FakeDriver({ app: () => (long ? { exitAfterMs: 11 * 60_000, exitCode: 1 } : { exitAfterMs: 0, exitCode: 1 }) });
    const c = new PodController(pod(), d, { clock: d.clock });
    c.start();
    await d.clock.advance(75_000); // restarts at 0, 0, 10, 30, 70
    expect(d.starts.length).toBe(5);
    long = true;
    await d.clock.advance(150_000); // next start at 70+80=150 s runs 11 min
    expect(d.starts.length).toBe(6);
    long = false;
    await d.clock.advance(11 * 60_000 + 1000);
    // after a long run the back-off is reset: the next restart is immediate, then 10 s
    const at = d.starts.map((s) => s.at);
    expect(at[6] - (at[5] + 11 * 60_000)).toBe(0);
    await d.clock.advance(30_000);
    expect(d.starts[7].at - d.starts[6].at).toBe(10_000);
    await c.stop();
  });

  it('Backoff: the entry grows only while exits come within resetAfter of the last restart', () => {
    const b = new Backoff({ baseMs: 10, maxMs: 40, resetAfterMs: 100 });
    expect(b.blockedUntil(0, 0)).toBeUndefined();
    b.next(0, 0);
    expect(b.blockedUntil(5, 5)).toBe(15);
    b.next(5, 15);
    expect(b.entry).toEqual({ delayMs: 20, lastUpdate: 15 });
    expect(b.blockedUntil(500, 500)).toBeUndefined(); // expired
    b.next(500, 500);
    expect(b.entry).toEqual({ delayMs: 10, lastUpdate: 500 });
  });
});

describe('restartPolicy', () => {
  it('Never: no restart; Failed when an app container failed', async () => {
    const d = new FakeDriver({ app: () => ({ exitAfterMs: 500, exitCode: 2 }) });
    const c = new PodController(pod({ restartPolicy: 'Never' }), d, { clock: d.clock });
    c.start();
    const done = c.done();
    await d.clock.advance(60_000);
    expect(d.starts.length).toBe(1);
    const st = await done;
    expect(st.phase).toBe('Failed');
    expect(st.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 2, reason: 'Error' });
  });

  it('OnFailure: restarts failures, not successes; Succeeded at the end', async () => {
    const d = new FakeDriver({ app: (run) => ({ exitAfterMs: 100, exitCode: run < 2 ? 1 : 0 }) });
    const c = new PodController(pod({ restartPolicy: 'OnFailure' }), d, { clock: d.clock });
    c.start();
    const done = c.done();
    await d.clock.advance(60_000);
    expect(d.starts.map((s) => s.restartCount)).toEqual([0, 1, 2]);
    const st = await done;
    expect(st.phase).toBe('Succeeded');
    expect(st.containerStatuses[0]).toMatchObject({ restartCount: 2, ready: false, started: false });
    expect(st.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(st.containerStatuses[0].lastState.terminated).toMatchObject({ exitCode: 1, reason: 'Error' });
  });

  it('Always: restarts containers that exit 0 too', async () => {
    const d = new FakeDriver({ app: () => ({ exitAfterMs: 100, exitCode: 0 }) });
    const c = new PodController(pod({ restartPolicy: 'Always' }), d, { clock: d.clock });
    c.start();
    await d.clock.advance(15_000);
    expect(d.starts.length).toBe(3);
    expect(c.status().phase).toBe('Running');
    await c.stop();
  });

  it('reports OOMKilled from the driver, not from the exit code', async () => {
    const d = new FakeDriver({ app: () => ({ exitAfterMs: 100, exitCode: 137, oomKilled: true }) });
    const { events, sink } = collect();
    const c2 = new PodController(pod({ restartPolicy: 'Never' }), d, { clock: d.clock, events: sink });
    c2.start();
    await d.clock.advance(1000);
    expect(c2.status().containerStatuses[0].state.terminated).toMatchObject({ exitCode: 137, reason: 'OOMKilled' });
    expect(events).toContainEqual(expect.objectContaining({ type: 'container', container: 'app', state: 'terminated', reason: 'OOMKilled', exitCode: 137 }));
  });

  it('a start failure without a container (image pull) waits in ErrImagePull / ImagePullBackOff and retries', async () => {
    const pullErr = Object.assign(new Error('Cannot pull "registry.test/nope:1": manifest unknown'), { reason: 'ErrImagePull' });
    const d = new FakeDriver({ app: (run) => (run < 2 ? { startError: pullErr } : {}) });
    const c = new PodController(pod(), d, { clock: d.clock });
    c.start();
    await d.clock.advance(10);
    expect(c.status().containerStatuses[0].state.waiting?.reason).toBe('ErrImagePull');
    expect(c.status().phase).toBe('Pending');
    await d.clock.advance(2000);
    expect(c.status().containerStatuses[0].state.waiting).toEqual({ reason: 'ImagePullBackOff', message: 'Back-off pulling image "registry.test/busybox:1.36"' });
    await d.clock.advance(40_000); // retries at 10 s (fails) and 30 s (works)
    expect(d.log.filter((l) => l.startsWith('start app')).map((l) => l.split('@')[1])).toEqual(['0', '10000', '30000']);
    expect(c.status().containerStatuses[0]).toMatchObject({ restartCount: 0, state: { running: {} } });
    await c.stop();
  });

  it('starts the other containers while one waits in back-off after a failed start', async () => {
    const err = Object.assign(new Error('Cannot create container "a": configMap "gone" not found'), { reason: 'CreateContainerConfigError' });
    const d = new FakeDriver({ a: () => ({ startError: err }), b: () => ({}) });
    const c = new PodController(pod({ containers: [container('a'), container('b')] }), d, { clock: d.clock });
    c.start();
    await d.clock.advance(100);
    const [a, b] = c.status().containerStatuses;
    expect(a.state.waiting?.reason).toBe('CreateContainerConfigError');
    expect(b.state.running).toBeDefined();
    await c.stop();
  });

  it('a StartError counts as a run that exited 128', async () => {
    const err = Object.assign(new Error('Cannot exec "/nope": ENOENT'), { reason: 'StartError' });
    const d = new FakeDriver({ app: () => ({ startError: err }) });
    const c = new PodController(pod({ restartPolicy: 'Never' }), d, { clock: d.clock });
    c.start();
    const st = await Promise.race([c.done(), d.clock.advance(1000).then(() => c.status())]);
    expect(st.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 128, reason: 'StartError', startedAt: '1970-01-01T00:00:00Z' });
    expect(st.phase).toBe('Failed');
  });
});
