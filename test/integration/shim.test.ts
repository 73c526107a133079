// The native shim on the real kernel with a busybox rootfs: two containers in one pinned sandbox,
// observed from the inside. Each test's containers live in the sandbox's podrun-test-<random>
// cgroup and temp dir; afterAll removes every process, mount, pin and cgroup and checks it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mountsUnder } from '../../src/linux/mounts.js';
import {
  CAPABILITIES,
  DEFAULT_CAPABILITIES,
  execInContainer,
  isSameProcess,
  processStartTime,
  serializePlan,
  shimPath,
  startContainerProcess,
  startPause,
  waitExitStatus,
  type ExecPlan,
} from '../../src/runtime/shim.js';
import { eventually, isAlive, killIfAlive, sys, TestSandbox, waitGone } from '../helpers/sandbox.js';

let sb: TestSandbox;
beforeAll(() => {
  sb = new TestSandbox();
});
afterAll(async () => {
  const base = sb.base;
  await sb.cleanup();
  // nothing left behind
  expect(mountsUnder(base)).toEqual([]);
  expect(fs.existsSync(base)).toBe(false);
  expect(sb.cg.exists(sb.id)).toBe(false);
  expect(sb.pidsToKill.alive()).toEqual([]);
});

const capMask = (names: string[]) => names.reduce((m, n) => m | (1n << BigInt(CAPABILITIES[n])), 0n).toString(16).padStart(16, '0');
const field = (lines: string[], key: string) => lines.find((l) => l.startsWith(key))?.split(/\s+/)[1];

describe('two containers in one sandbox', () => {
  test('share net, ipc and uts (and the hostname); each has its own mnt and pid namespace with itself as pid 1', async () => {
    const script = 'for n in net ipc uts mnt pid; do echo "$n $(readlink /proc/self/ns/$n)"; done; echo "host $(hostname)"; echo "self $$"; echo "init $(tr "\\0" " " < /proc/1/cmdline)"';
    // A stays alive while B looks (namespace inode numbers are reused once a namespace is gone)
    const a = sb.container('ns-a', ['sleep', '30']);
    const b = sb.container('ns-b', ['sh', '-c', script]);
    const startedA = await sb.start(a);
    expect((await sb.run(b)).exitCode).toBe(0);
    const B = Object.fromEntries(sb.stdout(b).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]));
    const A = Object.fromEntries(['net', 'ipc', 'uts', 'mnt', 'pid'].map((n) => [n, fs.readlinkSync(`/proc/${startedA.pid}/ns/${n}`)]));
    const pinIno = (p: string) => String(fs.statSync(p).ino);
    for (const k of ['net', 'ipc', 'uts'] as const) {
      expect(B[k]).toBe(A[k]);
      expect(B[k]).toContain(`[${pinIno(sb.pins[k])}]`);
    }
    expect(B.mnt).not.toBe(A.mnt);
    expect(B.pid).not.toBe(A.pid);
    expect(A.mnt).not.toBe(fs.readlinkSync('/proc/self/ns/mnt'));
    expect(B.host).toBe(sb.hostname);
    expect(B.self).toBe('1');
    expect(B.init).toBe(`sh -c ${script} `);
    // A is pid 1 of its own namespace too
    expect(fs.readFileSync(`/proc/${startedA.pid}/status`, 'utf8')).toMatch(new RegExp(`NSpid:\\s+${startedA.pid}\\s+1\\n`));
    process.kill(startedA.pid, 'SIGKILL');
    expect(await waitExitStatus(a.plan.stateDir)).toMatchObject({ exitCode: 137 });
  });
});

describe('process', () => {
  test('exit codes and signals are reported in the exit file', async () => {
    const c = sb.container('exit-7', ['sh', '-c', 'exit 7']);
    expect(await sb.run(c)).toMatchObject({ exitCode: 7 });
    // pid 1 of a PID namespace cannot be killed from inside: the signal comes from the host
    const k = sb.container('exit-kill', ['sleep', '30']);
    const started = await sb.start(k);
    process.kill(started.pid, 'SIGKILL');
    const st = (await waitExitStatus(k.plan.stateDir, 10_000))!;
    expect(st).toMatchObject({ exitCode: 137, signal: 9, pid: started.pid });
    expect(st.finishedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  });

  test('logs: CRI format, both streams, partial lines for long ones, last line without newline', async () => {
    const long = 20000;
    const c = sb.container('logs', ['sh', '-c', `echo out1; echo err1 >&2; echo out2; head -c ${long} /dev/zero | tr "\\0" x; echo; printf tail`]);
    await sb.run(c);
    const log = sb.log(c);
    for (const l of log) expect(l.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const out = log.filter((l) => l.stream === 'stdout');
    expect(out[0]).toMatchObject({ tag: 'F', text: 'out1' });
    expect(out[1]).toMatchObject({ tag: 'F', text: 'out2' });
    expect(out[2].tag).toBe('P');
    expect(out[3].tag).toBe('F');
    expect(out[2].text.length + out[3].text.length).toBe(long);
    expect(out[4]).toMatchObject({ tag: 'F', text: 'tail' });
    expect(log.filter((l) => l.stream === 'stderr')).toMatchObject([{ tag: 'F', text: 'err1' }]);
  });

  test('a terminal (tty: true): stdio is a pty of the container, its output logged as stdout lines', async () => {
    const c = sb.container('tty', ['sh', '-c', 'tty; test -t 0 && test -t 2 && echo all-tty; echo to-stderr >&2'], { process: { terminal: true } });
    const st = await sb.run(c);
    expect(st.exitCode).toBe(0);
    expect(sb.log(c).map((l) => `${l.stream} ${l.text}`)).toEqual(['stdout /dev/pts/0', 'stdout all-tty', 'stdout to-stderr']);
  });

  test('only stdio is open; stdin is /dev/null', async () => {
    const c = sb.container('fds', ['sh', '-c', 'ls /proc/$$/fd; readlink /proc/$$/fd/0']);
    await sb.run(c);
    expect(sb.stdout(c)).toEqual(['0', '1', '2', '/dev/null']);
  });

  test('uid, gid and supplementary groups; a non-root user has no effective capabilities', async () => {
    const c = sb.container('ids', ['sh', '-c', 'id; grep -E "^Cap(Eff|Bnd)" /proc/self/status; touch /home/app/ok && echo wrote; touch /root/x 2>&1 || true'], {
      process: { uid: 1000, gid: 1000, additionalGids: [1000, 2000], cwd: '/home/app' },
    });
    await sb.run(c);
    const out = sb.stdout(c);
    expect(out[0]).toBe('uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)');
    expect(field(out, 'CapEff:')).toBe('0000000000000000');
    expect(field(out, 'CapBnd:')).toBe(capMask(DEFAULT_CAPABILITIES));
    expect(out).toContain('wrote');
    expect(out.join('\n')).toMatch(/Permission denied/);
  });

  test('capabilities from the plan: bounding, effective, ambient for a non-root user', async () => {
    const root = sb.container('caps-root', ['sh', '-c', 'grep -E "^Cap" /proc/self/status'], {
      process: { capabilities: { bounding: ['CAP_CHOWN', 'CAP_NET_ADMIN'], effective: ['CAP_CHOWN', 'CAP_NET_ADMIN'], permitted: ['CAP_CHOWN', 'CAP_NET_ADMIN'], inheritable: [], ambient: [] } },
    });
    await sb.run(root);
    const r = sb.stdout(root);
    expect(field(r, 'CapEff:')).toBe(capMask(['CAP_CHOWN', 'CAP_NET_ADMIN']));
    expect(field(r, 'CapBnd:')).toBe(capMask(['CAP_CHOWN', 'CAP_NET_ADMIN']));
    const amb = ['CAP_NET_BIND_SERVICE'];
    const user = sb.container('caps-ambient', ['sh', '-c', 'grep -E "^Cap" /proc/self/status'], {
      process: { uid: 1000, gid: 1000, additionalGids: [], capabilities: { bounding: DEFAULT_CAPABILITIES, effective: amb, permitted: amb, inheritable: amb, ambient: amb } },
    });
    await sb.run(user);
    const u = sb.stdout(user);
    expect(field(u, 'CapEff:')).toBe(capMask(amb));
    expect(field(u, 'CapAmb:')).toBe(capMask(amb));
  });

  test('no_new_privs when asked', async () => {
    const on = sb.container('nnp-on', ['grep', 'NoNewPrivs', '/proc/self/status'], { process: { noNewPrivileges: true } });
    const off = sb.container('nnp-off', ['grep', 'NoNewPrivs', '/proc/self/status']);
    await Promise.all([sb.run(on), sb.run(off)]);
    expect(sb.stdout(on)).toEqual(['NoNewPrivs:\t1']);
    expect(sb.stdout(off)).toEqual(['NoNewPrivs:\t0']);
  });

  test('rlimits are set; above the hard limit without CAP_SYS_RESOURCE is a precise ESHIM error', async () => {
    const c = sb.container('rlimit', ['sh', '-c', 'ulimit -n; ulimit -Hn'], { process: { rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1000, hard: 2000 }] } });
    await sb.run(c);
    expect(sb.stdout(c)).toEqual(['1000', '2000']);
    const hard = Number(fs.readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+\d+\s+(\d+)/)![1]);
    const bad = sb.container('rlimit-bad', ['sh', '-c', 'ulimit -Hn'], { process: { rlimits: [{ type: 'NOFILE', soft: hard + 1, hard: hard + 1 }] } });
    // raising a hard limit needs CAP_SYS_RESOURCE: the development hosts lack it, the VM has it
    const capEff = BigInt('0x' + /CapEff:\s+([0-9a-f]+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);
    if ((capEff >> BigInt(CAPABILITIES.CAP_SYS_RESOURCE)) & 1n) {
      await sb.run(bad);
      expect(sb.stdout(bad)).toEqual([String(hard + 1)]);
    } else {
      await expect(sb.start(bad)).rejects.toMatchObject({ code: 'ESHIM', step: 'setrlimit', errnoName: 'EPERM' });
    }
  });

  test('a missing command or working directory fails with the step, errno and path; no monitor stays', async () => {
    const c = sb.container('no-cmd', ['/bin/does-not-exist']);
    await expect(startContainerProcess(c.plan)).rejects.toMatchObject({ code: 'ESHIM', step: 'execve', errnoName: 'ENOENT', path: '/bin/does-not-exist' });
    const d = sb.container('no-cwd', ['true'], { process: { cwd: '/nope' } });
    await expect(startContainerProcess(d.plan)).rejects.toThrow(/shim step "chdir" on "\/nope" failed: ENOENT/);
    expect(sb.cg.pids(c.cgroup)).toEqual([]);
    expect(mountsUnder(c.plan.rootfs.mountPoint)).toEqual([]);
  });
});

describe('filesystem', () => {
  test('the overlay is mounted only inside the container; writes land in the upper dir', async () => {
    const c = sb.container('overlay', ['sh', '-c', 'echo data > /created; cat /proc/self/mountinfo | grep " / / "']);
    await sb.run(c);
    expect(fs.readFileSync(path.join(c.plan.rootfs.upperDir, 'created'), 'utf8')).toBe('data\n');
    expect(sb.stdout(c)[0]).toMatch(/ - overlay overlay /);
    expect(mountsUnder(c.plan.rootfs.mountPoint)).toEqual([]); // never visible on the host
    expect(fs.existsSync(path.join(sb.rootfs, 'created'))).toBe(false);
  });

  test('many layers: overlay options use relative paths past one page', async () => {
    // 50 layers named like chain IDs: ~4.8 KB of absolute paths, ~3.6 KB relative
    const layersDir = path.join(sb.base, 'layers');
    const lowers: string[] = [];
    for (let i = 0; i < 50; i++) {
      const d = path.join(layersDir, `${String(i).padStart(3, '0')}${'f'.repeat(61)}`);
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, `layer-${i}`), String(i));
      lowers.push(d);
    }
    const c = sb.container('layers', ['sh', '-c', 'ls / | grep -c layer-; cat /layer-0 /layer-49']);
    c.plan.rootfs.lowerDirs = [...lowers, sb.rootfs];
    expect(serializePlan(c.plan)).toContain('rootfs.cwd ');
    await sb.run(c);
    expect(sb.stdout(c)).toEqual(['50', '049']);
  });

  test('read-only rootfs; /dev/shm, /proc and /dev stay usable', async () => {
    const c = sb.container('ro', ['sh', '-c', 'touch /x 2>&1; touch /tmp/x 2>&1; echo ok > /dev/shm/f && cat /dev/shm/f; echo hi > /dev/null && echo null'], { plan: {} });
    c.plan.rootfs.readOnly = true;
    await sb.run(c);
    const out = sb.stdout(c);
    expect(out[0]).toMatch(/Read-only file system/);
    expect(out[1]).toMatch(/Read-only file system/);
    expect(out.slice(2)).toEqual(['ok', 'null']);
  });

  test('masked and read-only paths; /sys is read-only; device nodes and links exist', async () => {
    const script = [
      'echo "keys $(wc -c < /proc/keys)"',
      'echo "timer_list $(wc -c < /proc/timer_list)"',
      'echo "firmware $(ls /sys/firmware | wc -l)"',
      '(echo 1 > /proc/sys/vm/drop_caches) 2>&1',
      `echo "ro $(grep -E ' /proc/(sys|irq|fs|bus) ' /proc/self/mountinfo | cut -d' ' -f5,6 | tr '\\n' ' ')"`,
      'mkdir /sys/x 2>&1',
      'echo "dev $(ls /dev | tr "\\n" " ")"',
      'for l in ptmx fd stdin; do echo "link $l $(readlink /dev/$l)"; done',
      'grep -E " /dev/(pts|mqueue|shm) " /proc/self/mountinfo | cut -d" " -f5,9',
      'true',
    ].join('; ');
    const c = sb.container('masked', ['sh', '-c', script]);
    await sb.run(c);
    const out = sb.stdout(c);
    // (this kernel has no /proc/kcore; a mask of a missing path is skipped)
    expect(fs.readFileSync('/proc/timer_list', 'utf8').length).toBeGreaterThan(0);
    expect(out.slice(0, 3)).toEqual(['keys 0', 'timer_list 0', 'firmware 0']);
    expect(out[3]).toMatch(/Read-only file system/);
    const ro = out[4].replace(/^ro /, '').trim().split(' ');
    for (const p of ['/proc/sys', '/proc/irq', '/proc/fs', '/proc/bus'].filter((x) => fs.existsSync(x))) {
      expect(ro[ro.indexOf(p) + 1]).toMatch(/^ro,/);
    }
    expect(out[5]).toMatch(/Read-only file system/);
    expect(out[6].split(' ')).toEqual(expect.arrayContaining(['null', 'zero', 'full', 'random', 'urandom', 'tty', 'ptmx', 'pts', 'shm', 'mqueue', 'fd', 'stdin', 'stdout', 'stderr']));
    expect(out.slice(7, 10)).toEqual(['link ptmx pts/ptmx', 'link fd /proc/self/fd', 'link stdin /proc/self/fd/0']);
    expect(out.slice(10).sort()).toEqual(['/dev/mqueue mqueue', '/dev/pts devpts', '/dev/shm shm'] /* mount point, source */);
  });

  test('bind mounts: rw volume shared by two containers, read-only file, shm from the pod, target created through a symlink inside', async () => {
    const vol = fs.mkdtempSync(path.join(sb.base, 'vol-'));
    const shm = fs.mkdtempSync(path.join(sb.base, 'shm-'));
    const hosts = path.join(sb.base, 'hosts');
    fs.writeFileSync(hosts, '127.0.0.1 localhost\n10.0.0.1 podrun-test\n');
    fs.symlinkSync('/var', path.join(sb.rootfs, 'varlink'));
    // a submount inside the volume: a recursive read-only bind makes it read-only too
    fs.mkdirSync(path.join(vol, 'sub'));
    sys.mount('tmpfs', path.join(vol, 'sub'), 'tmpfs', 0, 'size=1m');
    const mounts = [
      { source: vol, target: '/data', readOnly: false },
      { source: hosts, target: '/etc/hosts', readOnly: true },
      { source: vol, target: '/varlink/vol', readOnly: true },
    ];
    const w = sb.container('bind-w', ['sh', '-c', 'echo from-w > /data/f; echo shm-w > /dev/shm/s; cat /etc/hosts; (echo x >> /etc/hosts) 2>&1; true'], { plan: { mounts, shmSource: shm } });
    await sb.run(w);
    const r = sb.container('bind-r', ['sh', '-c', 'cat /data/f /dev/shm/s /var/vol/f; (echo y > /var/vol/g) 2>&1; (echo z > /var/vol/sub/z) 2>&1; echo sub-rw > /data/sub/w && cat /data/sub/w'], { plan: { mounts, shmSource: shm } });
    await sb.run(r);
    expect(sb.stdout(w).slice(0, 2)).toEqual(['127.0.0.1 localhost', '10.0.0.1 podrun-test']);
    expect(sb.stdout(w)[2]).toMatch(/Read-only file system/);
    expect(sb.stdout(r).slice(0, 3)).toEqual(['from-w', 'shm-w', 'from-w']);
    expect(sb.stdout(r)[3]).toMatch(/Read-only file system/);
    expect(sb.stdout(r)[4]).toMatch(/Read-only file system/);
    expect(sb.stdout(r)[5]).toBe('sub-rw');
    expect(fs.readFileSync(path.join(shm, 's'), 'utf8')).toBe('shm-w\n');
    // the symlink resolved inside the container: nothing was created on the host's /var
    expect(fs.existsSync('/var/vol')).toBe(false);
    fs.rmSync(path.join(sb.rootfs, 'varlink'));
  });

  test('namespaced sysctls are written into the pod namespaces', async () => {
    const c = sb.container('sysctl', ['sh', '-c', 'cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni'], {
      plan: { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '80' }, { name: 'kernel.shmmni', value: '2048' }] },
    });
    await sb.run(c);
    expect(sb.stdout(c)).toEqual(['80', '2048']);
    expect(fs.readFileSync('/proc/sys/kernel/shmmni', 'utf8').trim()).not.toBe('2048');
  });
});

function execPlan(c: { started?: { pid: number; startTime: number }; cgroup: string }, args: string[], more: Partial<ExecPlan['process']> = {}, terminal = false): ExecPlan {
  return {
    pid: c.started!.pid,
    startTime: c.started!.startTime,
    cgroupProcs: sb.cg.procsFiles(c.cgroup),
    process: { ...sb.defaultProcess(args), ...more },
    terminal,
  };
}

describe('exec and identity', () => {
  test('exec joins the namespaces and cgroup of a running container, with its own user and exit code', async () => {
    const c = sb.container('exec', ['sleep', '30']);
    const started = await sb.start(c);
    expect(isSameProcess(started.pid, started.startTime)).toBe(true);
    expect(processStartTime(started.pid)).toBe(started.startTime);
    const r = await execInContainer(execPlan(c, ['sh', '-c', 'for n in net ipc uts mnt pid cgroup; do readlink /proc/self/ns/$n; done; tr "\\0" " " < /proc/1/cmdline; echo; echo $$; id -u']), { stdio: 'capture' });
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.toString().trim().split('\n');
    const expected = ['net', 'ipc', 'uts', 'mnt', 'pid', 'cgroup'].map((n) => fs.readlinkSync(`/proc/${started.pid}/ns/${n}`));
    expect(lines.slice(0, 6)).toEqual(expected);
    expect(lines[6]).toBe('sleep 30 ');
    expect(lines[7]).not.toBe('1');
    expect(lines[8]).toBe('0');

    // the exec'd process is in the container's cgroup while it runs
    const bg = execInContainer(execPlan(c, ['sh', '-c', 'echo $PPID; sleep 1']), { stdio: 'capture' });
    await eventually(() => sb.cg.pids(c.cgroup).length >= 2);
    await bg;

    const u = await execInContainer(execPlan(c, ['sh', '-c', 'id; cat; exit 5'], { uid: 1000, gid: 1000, additionalGids: [1000] }), { stdio: 'capture', input: 'from-stdin\n' });
    expect(u.exitCode).toBe(5);
    expect(u.stdout.toString()).toBe('uid=1000(app) gid=1000(app) groups=1000(app)\nfrom-stdin\n');

    const k = await execInContainer(execPlan(c, ['sh', '-c', 'kill -TERM $$']), { stdio: 'capture' });
    expect(k.exitCode).toBe(128 + 15);

    // the pty comes from the container's own devpts instance: its name resolves inside
    const t = await execInContainer(execPlan(c, ['sh', '-c', 'test -t 0 && test -t 1 && tty && stat -c %U $(tty)'], { uid: 1000, gid: 1000, additionalGids: [] }, true), { stdio: 'capture', input: '' });
    expect(t.stdout.toString().split(/\r?\n/).filter(Boolean)).toEqual(['/dev/pts/0', 'app']);
    expect(t.exitCode).toBe(0);

    await expect(execInContainer(execPlan(c, ['/nope']), { stdio: 'capture' })).rejects.toMatchObject({ code: 'ESHIM', step: 'execve', errnoName: 'ENOENT' });

    // sleep as pid 1 has no SIGTERM handler, so only SIGKILL ends it (as in Kubernetes)
    process.kill(started.pid, 'SIGKILL');
    const st = await waitExitStatus(c.plan.stateDir, 10_000);
    expect(st).toMatchObject({ signal: 9, exitCode: 137 });
    expect(isSameProcess(started.pid, started.startTime)).toBe(false);
    await expect(execInContainer(execPlan(c, ['true']), { stdio: 'capture' })).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  test('the monitor ignores stop signals and outlives a SIGKILLed Node parent, whose spawner leaves with it: logs and exit file still written', async () => {
    const c = sb.container('orphan', ['sh', '-c', 'trap "echo got-term; exit 3" TERM; echo before; while :; do sleep 0.1; done']);
    const planFile = path.join(c.plan.stateDir, 'plan');
    fs.writeFileSync(planFile, serializePlan(c.plan));
    // A separate Node process plays the supervisor: it starts `podrun-shim spawner` and asks it for
    // the monitor, as startContainerProcess does (spawner.ts).
    const js = `
      const { spawn } = require('node:child_process');
      const sp = spawn(${JSON.stringify(shimPath())}, ['spawner'], { detached: true, stdio: ['pipe', 'pipe', 'inherit'] });
      let monitor = 0;
      sp.stdout.on('data', (d) => {
        for (const l of String(d).split('\\n')) {
          const t = l.split(' ');
          if (t[1] === 'pid') monitor = t[2];
          if (t[1] === 'line' && t[2] === 'started') process.stdout.write(sp.pid + ' ' + monitor + ' ' + t.slice(3).join(' ') + '\\n');
        }
      });
      sp.stdin.write('run 7 ' + ${JSON.stringify(planFile)} + ' ' + ${JSON.stringify(path.join(c.plan.stateDir, 'shim.stderr'))} + '\\n');
      setInterval(() => {}, 1000);`;
    const node = spawn(process.execPath, ['-e', js], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve) => node.stdout.on('data', (d) => resolve(String(d).trim())));
    const [spawnerPid, monitorPid, pid, startTime] = line.split(' ').map(Number);
    sb.pidsToKill.push(monitorPid, pid, spawnerPid);
    expect(fs.readFileSync(`/proc/${monitorPid}/cmdline`, 'utf8').split('\0')).toEqual([shimPath(), 'run', planFile, '']);
    expect(Number(fs.readFileSync(`/proc/${monitorPid}/stat`, 'utf8').split(') ')[1].split(' ')[1])).toBe(spawnerPid); // its parent
    node.kill('SIGKILL');
    await waitGone(node.pid!);
    await waitGone(spawnerPid); // end of file on its stdin
    // stop signals sent to the monitor do not kill it
    for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.kill(monitorPid, s);
    await new Promise((r) => setTimeout(r, 200));
    expect(isAlive(monitorPid)).toBe(true);
    expect(isSameProcess(pid, startTime)).toBe(true);
    expect(fs.readFileSync(path.join(c.plan.stateDir, 'started'), 'utf8')).toBe(`${monitorPid} ${pid} ${startTime}\n`);
    process.kill(pid, 'SIGTERM');
    const st = await waitExitStatus(c.plan.stateDir, 10_000);
    expect(st).toMatchObject({ exitCode: 3, pid });
    await waitGone(monitorPid);
    expect(sb.stdout(c)).toEqual(['before', 'got-term']);
  });

  test('one spawner starts several monitors at once; each gets its own status, stderr file and session', async () => {
    const cs = ['par-a', 'par-b', 'par-c'].map((n) => sb.container(n, ['sh', '-c', `echo ${n}; sleep 0.3`]));
    const bad = sb.container('par-bad', ['/no/such/command']);
    const results = await Promise.allSettled([...cs, bad].map((c) => startContainerProcess(c.plan)));
    const ok = results.slice(0, 3).map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof startContainerProcess>>>).value);
    for (const s of ok) sb.pidsToKill.push(s.monitorPid, s.pid);
    // the monitor's pid is known even when its "started" line came in the same read as the pid
    // (it once came out 0 then, and a cleanup's kill(0) took the test runner's process group)
    for (const [i, s] of ok.entries()) {
      expect(s.monitorPid).toBeGreaterThan(0);
      expect(fs.readFileSync(path.join(cs[i].plan.stateDir, 'started'), 'utf8')).toBe(`${s.monitorPid} ${s.pid} ${s.startTime}\n`);
    }
    expect(new Set(ok.map((s) => s.monitorPid)).size).toBe(3);
    for (const s of ok) {
      const stat = fs.readFileSync(`/proc/${s.monitorPid}/stat`, 'utf8').split(') ')[1].split(' ');
      expect(Number(stat[3])).toBe(s.monitorPid); // session leader of its own session
    }
    expect(results[3].status).toBe('rejected');
    expect((results[3] as PromiseRejectedResult).reason).toMatchObject({ code: 'ESHIM', step: 'execve', errnoName: 'ENOENT' });
    for (const c of cs) await waitExitStatus(c.plan.stateDir, 10_000);
    expect(cs.map((c) => sb.stdout(c))).toEqual([['par-a'], ['par-b'], ['par-c']]);
  });

  test('shareProcessNamespace: containers join the pause process\'s PID namespace and see each other', async () => {
    const rel = `${sb.id}/pod/pause`;
    sb.cg.create(rel);
    const pause = await startPause({ cgroupProcs: sb.cg.procsFiles(rel) });
    sb.pidsToKill.push(pause.pid);
    // the shim that forked the pause process leaves the cgroup a moment later
    await eventually(() => sb.cg.pids(rel).length === 1);
    expect(sb.cg.pids(rel)).toEqual([pause.pid]);
    const ns = `/proc/${pause.pid}/ns/pid`;
    const a = sb.container('shared-a', ['sleep', '30'], { plan: { namespaces: { ...sb.container('tmp', ['true']).plan.namespaces, pid: ns } } });
    const startedA = await sb.start(a);
    const b = sb.container('shared-b', ['sh', '-c', 'tr "\\0" " " < /proc/1/cmdline; echo; ps -o comm | sort | tr "\\n" " "; echo; (sleep 0.2 &); i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); [ $(ps -o args | grep -c "^sleep 0.2") = 0 ] && break; done; echo "orphans $(ps -o args | grep -c "^sleep 0.2") zombies $(ps -o stat | grep -c Z)"'], { plan: { namespaces: { ...a.plan.namespaces } } });
    await sb.run(b);
    const out = sb.stdout(b);
    expect(out[0]).toMatch(/podrun-shim pause/);
    expect(out[1]).toContain('sleep');
    // the orphaned "sleep 0.2" was re-parented to the pause process and reaped: no zombie left
    expect(out[2]).toBe('orphans 0 zombies 0');
    expect(fs.readlinkSync(`/proc/${startedA.pid}/ns/pid`)).toBe(fs.readlinkSync(ns));
    killIfAlive(startedA.pid);
    await waitExitStatus(a.plan.stateDir, 10_000);
    process.kill(pause.pid, 'SIGTERM');
    await waitGone(pause.pid);
  });

  test('every shim step is a trace event; the hostname is set only when the plan says so', async () => {
    const events: { area: string; step: string; detail?: string }[] = [];
    const c = sb.container('renamed', ['hostname'], { plan: { hostname: 'podrun-test-renamed' } });
    const started = await startContainerProcess(c.plan, { sink: (e) => e.type === 'trace' && events.push(e) });
    sb.pidsToKill.push(started.monitorPid, started.pid);
    await waitExitStatus(c.plan.stateDir);
    expect(sb.stdout(c)).toEqual(['podrun-test-renamed']);
    const steps = events.filter((e) => e.area === 'shim').map((e) => e.step);
    expect(steps).toEqual(expect.arrayContaining(['spawn', 'unshare', 'setns-net', 'mount-overlay', 'pivot_root', 'mount-proc', 'mount-dev', 'sethostname', 'exec']));
    expect(steps.indexOf('mount-overlay')).toBeLessThan(steps.indexOf('pivot_root'));
  });
});
