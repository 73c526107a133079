/**
 * A two-container pod from the local test registry, run with `podrun up -d` (background
 * supervisor): shared net/IPC/UTS, separate mount and PID namespaces, localhost traffic between
 * containers, an emptyDir shared by both, exec, logs, ps, and `down` leaving nothing behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { cgroupDirs, mountsBelow, processesMentioning, randomName, startPodEnv, waitFor, type PodEnv } from '../helpers/pod.js';

let e: PodEnv;
let pod: string;
let file: string;

beforeAll(async () => {
  e = await startPodEnv();
  pod = randomName();
  file = e.manifest(
    'pod.yaml',
    `apiVersion: v1
kind: Pod
metadata:
  name: ${pod}
spec:
  terminationGracePeriodSeconds: 2
  volumes:
  - name: shared
    emptyDir: {}
  containers:
  - name: web
    image: ${e.busybox}
    command: [sh, -c, "echo hello from web > /www/index.html; echo web started; exec httpd -f -p 8080 -h /www"]
    volumeMounts:
    - {name: shared, mountPath: /www}
  - name: client
    image: ${e.busybox}
    command: [sh, -c, "echo client started; while true; do sleep 1; done"]
    volumeMounts:
    - {name: shared, mountPath: /data}
`,
  );
  const r = e.podrun(['up', '-d', file]);
  if (r.status !== 0) throw new Error(`podrun up -d failed: ${r.stderr}`);
}, 120_000);

afterAll(async () => {
  await e?.cleanup();
});

const exec = (container: string, cmd: string[]) => e.podrun(['exec', pod, '-c', container, '--', ...cmd]);

describe('a two-container pod', () => {
  it('is listed by ps as running with 2/2 ready', () => {
    const r = e.podrun(['ps']);
    expect(r.status).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.startsWith(pod));
    expect(line).toMatch(/2\/2\s+Running\s+0/);
  });

  it('ps -o wide lists each container, -o json everything', () => {
    const wide = e.podrun(['ps', '-o', 'wide']);
    expect(wide.stdout).toMatch(/^NAMESPACE\s+NAME\s+READY\s+STATUS/);
    expect(wide.stdout).toMatch(/^\s+web\s+running\s+0/m);
    expect(wide.stdout).toMatch(/^\s+client\s+running\s+0/m);
    const json = JSON.parse(e.podrun(['ps', '-o', 'json']).stdout);
    const p = json.find((x: { name: string }) => x.name === pod);
    expect(p.supervised).toBe(true);
    expect(p.status.phase).toBe('Running');
    expect(p.containers.map((c: { name: string }) => c.name).sort()).toEqual(['client', 'web']);
  });

  it('doctor reports the shim and the cgroup version', () => {
    const r = e.podrun(['doctor']);
    expect(r.stdout).toMatch(/^ok\s+shim\s+\S+podrun-shim$/m);
    expect(r.stdout).toMatch(/^(ok|warn)\s+cgroups\s+v[12]/m);
  });

  it('shares hostname, net and IPC namespaces; not mount or PID namespaces', () => {
    const ns = (c: string) => {
      const r = exec(c, ['sh', '-c', 'hostname; for n in net ipc uts mnt pid; do readlink /proc/self/ns/$n; done']);
      expect(r.status, r.stderr).toBe(0);
      const [hostname, net, ipc, uts, mnt, pid] = r.stdout.trim().split('\n');
      return { hostname, net, ipc, uts, mnt, pid };
    };
    const a = ns('web');
    const b = ns('client');
    expect(a.hostname).toBe(pod);
    expect(b.hostname).toBe(pod);
    expect(a.net).toBe(b.net);
    expect(a.ipc).toBe(b.ipc);
    expect(a.uts).toBe(b.uts);
    expect(a.mnt).not.toBe(b.mnt);
    expect(a.pid).not.toBe(b.pid);
    // and not the host's
    expect(a.net).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
  });

  it('lets the client reach the web container on localhost and read the shared emptyDir', async () => {
    const r = await waitFor('httpd to answer', () => {
      const x = exec('client', ['wget', '-q', '-O', '-', 'http://127.0.0.1:8080/index.html']);
      return x.status === 0 ? x : undefined;
    });
    expect(r.stdout).toBe('hello from web\n');
    const f = exec('client', ['cat', '/data/index.html']);
    expect(f.stdout).toBe('hello from web\n');
  });

  it('gives each container its own PID namespace with the command as pid 1', () => {
    const r = exec('client', ['cat', '/proc/1/cmdline']);
    expect(r.stdout.split('\0')[0]).toBe('sh');
  });

  it('returns the exit status of exec', () => {
    expect(exec('client', ['sh', '-c', 'exit 7']).status).toBe(7);
  });

  it('shows the logs of each container', () => {
    const r = e.podrun(['logs', pod, '-c', 'web']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('web started');
    const t = e.podrun(['logs', '--timestamps', '--tail', '1', pod, '-c', 'client']);
    expect(t.stdout).toMatch(/^\d{4}-\d\d-\d\dT\S+Z client started\n$/);
    const no = e.podrun(['logs', pod]);
    expect(no.status).toBe(1);
    expect(no.stderr).toContain('-c CONTAINER');
  });

  it('treats a second up of the same spec as a no-op and refuses a different spec', () => {
    const same = e.podrun(['up', '-d', '--wait', file]);
    expect(same.status, same.stderr).toBe(0);
    expect(same.stdout).toContain('unchanged');
    expect(same.stdout).toContain(`pod/${pod} ready`);
    const other = e.manifest('other.yaml', fs.readFileSync(file, 'utf8').replace('terminationGracePeriodSeconds: 2', 'terminationGracePeriodSeconds: 3'));
    const diff = e.podrun(['up', '-d', other]);
    expect(diff.status).toBe(1);
    expect(diff.stderr).toContain('different spec');
    expect(diff.stderr).toContain('--replace');
  });

  it('inspect prints the state as JSON', () => {
    const r = e.podrun(['inspect', pod]);
    const j = JSON.parse(r.stdout);
    expect(j.name).toBe(pod);
    expect(j.supervised).toBe(true);
    expect(Object.keys(j.containers)).toHaveLength(2);
  });

  it('down leaves no process, mount, pin or cgroup', async () => {
    const r = e.podrun(['down', pod]);
    expect(r.status, r.stderr).toBe(0);
    expect(mountsBelow(e.dir)).toEqual([]);
    expect(fs.readdirSync(path.join(e.runRoot, 'pods'))).toEqual([]);
    expect(cgroupDirs(e.cgroupParent)).toEqual([]);
    // the supervisor leaves once it has no pods; monitors are gone
    const left = () => processesMentioning(e.dir).map((p) => `${p}: ${readCmdline(p)}`);
    await waitFor('supervisor and monitors to exit', () => left().length === 0, 15_000).catch((err: Error) => {
      throw new Error(`${err.message}; still running: ${left().join('; ')}`);
    });
    expect(e.podrun(['ps', '-a']).stdout.trim().split('\n')).toHaveLength(1);
  });
});

function readCmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '(gone)';
  }
}
