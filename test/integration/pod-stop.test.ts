/**
 * Stop with the image's STOPSIGNAL: images built with StopSignal "SIGUSR1" and "10" run a shell
 * that traps USR1 (writes a marker into a hostPath dir and exits) and ignores TERM. `podrun down`
 * must stop the pod well within its 30 s grace period, and the markers show USR1 arrived. A control
 * pod with the plain busybox image (no STOPSIGNAL) running the same script gets SIGTERM, ignores
 * it, and is SIGKILLed at the end of its (short) grace period, with no marker.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushImage } from '../../src/image/builder.js';
import { busyboxWithStopSignal } from '../helpers/images.js';
import { randomName, startPodEnv, TIME_SCALE, waitFor, type PodEnv } from '../helpers/pod.js';

let e: PodEnv;
let marks: string;
const pods: string[] = [];

const SCRIPT = (name: string) =>
  `trap 'echo "$(date +%s) USR1" > /marks/${name}; exit 0' USR1; trap '' TERM; echo ready > /marks/${name}.ready; while true; do sleep 0.1; done`;

function podYaml(pod: string, grace: number, containers: { name: string; image: string }[]): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${pod}
spec:
  terminationGracePeriodSeconds: ${grace}
  volumes:
  - name: marks
    hostPath: {path: ${marks}, type: Directory}
  containers:
${containers
  .map(
    (c) => `  - name: ${c.name}
    image: ${c.image}
    command: [sh, -c, ${JSON.stringify(SCRIPT(c.name))}]
    volumeMounts:
    - {name: marks, mountPath: /marks}`,
  )
  .join('\n')}
`;
}

async function up(pod: string, yaml: string, names: string[]): Promise<void> {
  pods.push(pod);
  const r = e.podrun(['up', '-d', e.manifest(`${pod}.yaml`, yaml)]);
  if (r.status !== 0) throw new Error(`podrun up -d failed: ${r.stderr}`);
  await waitFor('the containers to install their traps', () => names.every((n) => fs.existsSync(path.join(marks, `${n}.ready`))));
}

beforeAll(async () => {
  e = await startPodEnv();
  marks = path.join(e.dir, 'marks');
  fs.mkdirSync(marks);
  await pushImage(`${e.reg.host}/test/stopsig:name`, await busyboxWithStopSignal('SIGUSR1'));
  await pushImage(`${e.reg.host}/test/stopsig:number`, await busyboxWithStopSignal('10'));
}, 120_000);

afterAll(async () => {
  for (const p of pods) e?.podrun(['down', p]);
  await e?.cleanup();
});

describe('STOPSIGNAL', () => {
  it('down sends the image\'s STOPSIGNAL (by name and by number) and returns quickly', async () => {
    const pod = randomName();
    await up(
      pod,
      podYaml(pod, 30, [
        { name: 'byname', image: `${e.reg.host}/test/stopsig:name` },
        { name: 'bynumber', image: `${e.reg.host}/test/stopsig:number` },
      ]),
      ['byname', 'bynumber'],
    );
    const t0 = Date.now();
    const r = e.podrun(['down', pod]);
    const ms = Date.now() - t0;
    if (process.env.PODRUN_TEST_TIMING) console.log(`down with STOPSIGNAL: ${ms} ms`);
    expect(r.status, r.stderr).toBe(0);
    expect(ms).toBeLessThan(10_000 * TIME_SCALE); // the grace period is 30 s
    expect(fs.readFileSync(path.join(marks, 'byname'), 'utf8')).toMatch(/^\d+ USR1\n$/);
    expect(fs.readFileSync(path.join(marks, 'bynumber'), 'utf8')).toMatch(/^\d+ USR1\n$/);
  });

  it('without STOPSIGNAL the same process gets SIGTERM, ignores it, and is killed after the grace period', async () => {
    const pod = randomName();
    await up(pod, podYaml(pod, 2, [{ name: 'plain', image: e.busybox }]), ['plain']);
    const t0 = Date.now();
    const r = e.podrun(['down', pod]);
    const ms = Date.now() - t0;
    if (process.env.PODRUN_TEST_TIMING) console.log(`down without STOPSIGNAL (grace 2 s): ${ms} ms`);
    expect(r.status, r.stderr).toBe(0);
    expect(ms).toBeGreaterThanOrEqual(1900);
    expect(fs.existsSync(path.join(marks, 'plain'))).toBe(false);
  });
});
