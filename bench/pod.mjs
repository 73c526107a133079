#!/usr/bin/env node
// Pod up/down and per-pod memory: podrun beside podman on this machine, in one run, as ratios.
//
//   node bench/pod.mjs            (after npm run build; root; runnable alone or from bench/run.mjs)
//
// - A docker-registry on a free 127.0.0.1 port holds a busybox image built from busybox-static.
// - podrun: `podrun up -d` of a two-container busybox pod until every container runs, then
//   `podrun down`, with the image cached; temp --root/--run-root/--log-root, a podrun-bench-*
//   cgroup parent. Printed twice: cold (no supervisor running: `up -d` starts one) and warm
//   (the supervisor of the previous round still runs, PODRUN_SUPERVISOR_IDLE_MS=600000 here). Pods get a loopback-only network (PODRUN_NETWORK=none) unless
//   PODRUN_BENCH_CNI=1 (then the default CNI network, which writes /etc/podrun/cni).
// - podman: `podman kube play` / `podman kube down` of the same YAML (image pulled first with
//   --tls-verify=false), alternating with podrun, ROUNDS rounds (default 5), medians.
// - memory: 10 running pods each; podrun = (supervisor RSS + every monitor's RSS) / 10;
//   podman = (every conmon's RSS + every infra process's RSS) / 10.
// Not a test: nothing here asserts a time.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { lockHolder } = await import(path.join(repo, 'dist/runtime/state.js'));
const BIN = path.join(repo, 'bin', 'podrun');
const ROUNDS = Number(process.env.ROUNDS || 5);
const PODS = Number(process.env.MEM_PODS || 10);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (s) => `${s.toFixed(3)} s`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function startRegistry(dir) {
  const port = await freePort();
  const cfg = path.join(dir, 'registry.yml');
  fs.writeFileSync(cfg, `version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: ${dir}/data}}\nhttp: {addr: 127.0.0.1:${port}}\n`);
  const log = fs.openSync(path.join(dir, 'registry.log'), 'a');
  const child = spawn('/usr/bin/docker-registry', ['serve', cfg], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v2/`);
      if (r.ok) return { host: `127.0.0.1:${port}`, child };
    } catch {
      /* not yet */
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error('docker-registry did not start');
}

function timed(cmd, args, env) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, encoding: 'utf8' });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return s;
}

function rssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function pidsWithCmdline(needle, name) {
  const out = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes(needle) && (!name || cmd.split('\0')[0].endsWith(name))) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The run root's supervisor if it still runs: supervisor.pid holds "pid starttime", and a pid
 * alone may name another process by now (pids wrap at 32768 here). */
function livePid(runRoot) {
  return lockHolder(path.join(runRoot, 'supervisor.pid'));
}

/** Ends this run root's supervisor (SIGTERM: it leaves without touching pods) and waits for it. */
async function stopSupervisor(runRoot) {
  const pid = livePid(runRoot);
  if (!pid) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100 && livePid(runRoot) === pid; i++) await sleep(20);
}

function podYaml(name, image) {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: a
    image: ${image}
    command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
  - name: b
    image: ${image}
    command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
`;
}

export async function run() {
  if (process.getuid?.() !== 0) throw new Error('bench/pod.mjs needs root');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-bench-'));
  const id = crypto.randomBytes(3).toString('hex');
  const env = {
    ...process.env,
    PODRUN_CGROUP_PARENT: `podrun-bench-${id}`,
    PODRUN_SUPERVISOR_IDLE_MS: '600000',
    ...(process.env.PODRUN_BENCH_CNI ? {} : { PODRUN_NETWORK: 'none' }),
  };
  const g = ['--root', path.join(tmp, 'root'), '--run-root', path.join(tmp, 'run'), '--log-root', path.join(tmp, 'log'), '--registry-config', path.join(tmp, 'none.yaml')];
  const podrun = (...a) => [BIN, [...g, ...a], env];
  const hasPodman = spawnSync('podman', ['--version']).status === 0;
  // podman's default rlimits exceed this machine's hard limits (HOST-FACTS): its own config file
  const pmConf = path.join(tmp, 'containers.conf');
  fs.writeFileSync(pmConf, '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n');
  const pmEnv = { ...process.env, CONTAINERS_CONF: pmConf };
  const reg = await startRegistry(tmp);
  const results = {};
  const podmanPods = [];
  try {
    const { buildImage, busyboxImageSpec, pushImage } = await import(path.join(repo, 'dist/image/builder.js'));
    const image = `${reg.host}/library/busybox:latest`;
    await pushImage(image, await buildImage(busyboxImageSpec()));
    // image cached for both
    execFileSync(BIN, [...g, 'pull', '-q', image], { env });
    if (hasPodman) execFileSync('podman', ['pull', '-q', '--tls-verify=false', image], { stdio: 'ignore' });

    const file = path.join(tmp, 'pod.yaml');
    fs.writeFileSync(file, podYaml(`podrun-bench-${id}`, image));
    const up = { podrun: [], cold: [], podman: [] };
    const down = { podrun: [], cold: [], podman: [] };
    const ps = [];
    for (let i = 0; i < ROUNDS; i++) {
      await stopSupervisor(path.join(tmp, 'run'));
      up.cold.push(timed(...podrun('up', '-d', file)));
      down.cold.push(timed(...podrun('down', file)));
      up.podrun.push(timed(...podrun('up', '-d', file)));
      ps.push(timed(...podrun('ps')));
      down.podrun.push(timed(...podrun('down', file)));
      if (hasPodman) {
        podmanPods.push(file);
        up.podman.push(timed('podman', ['kube', 'play', '--tls-verify=false', file], pmEnv));
        down.podman.push(timed('podman', ['kube', 'down', file], pmEnv));
        podmanPods.pop();
      }
    }
    console.log(`pod up/down, two busybox containers, image cached, ${ROUNDS} rounds alternating (medians)`);
    if (process.env.BENCH_VERBOSE) for (const [k, v] of Object.entries({ up, down })) for (const [t, xs] of Object.entries(v)) console.log(`  (${k} ${t}: ${xs.map((x) => x.toFixed(3)).join(' ')})`);
    console.log(`  podrun, cold (no supervisor yet):  up -d ${fmt(median(up.cold))}   down ${fmt(median(down.cold))}   (network: ${process.env.PODRUN_BENCH_CNI ? 'CNI bridge' : 'loopback only'})`);
    console.log(`  podrun, warm (supervisor running): up -d ${fmt(median(up.podrun))}   down ${fmt(median(down.podrun))}   ps ${fmt(median(ps))}`);
    console.log(`  node -e 0 (Node start-up alone):   ${fmt(median([0, 1, 2].map(() => timed(process.execPath, ['-e', '0'], env))))}`);
    results.podrunUp = median(up.podrun);
    results.podrunDown = median(down.podrun);
    results.podrunUpCold = median(up.cold);
    results.podrunDownCold = median(down.cold);
    results.podrunPs = median(ps);
    if (hasPodman) {
      console.log(`  podman kube play ${fmt(median(up.podman))}   podman kube down ${fmt(median(down.podman))}`);
      results.podmanUp = median(up.podman);
      results.podmanDown = median(down.podman);
      const r = (a, b) => `${(a / b).toFixed(2)}x`;
      console.log(`  ratio warm: up ${r(results.podrunUp, results.podmanUp)} (target ≤ 0.25x)   down ${r(results.podrunDown, results.podmanDown)} (target ≤ 0.1x)`);
      console.log(`  ratio cold: up ${r(results.podrunUpCold, results.podmanUp)}   down ${r(results.podrunDownCold, results.podmanDown)}`);
    } else console.log('  podman not installed: no comparison');

    // memory: PODS running pods each
    const files = [];
    for (let i = 0; i < PODS; i++) {
      const f = path.join(tmp, `mem-${i}.yaml`);
      fs.writeFileSync(f, podYaml(`podrun-bench-${id}-m${i}`, image));
      files.push(f);
      timed(...podrun('up', '-d', f));
    }
    await sleep(1000);
    const supPid = livePid(path.join(tmp, 'run')) ?? 0;
    const monitors = pidsWithCmdline(path.join(tmp, 'run'), 'podrun-shim');
    // the supervisor's monitor spawner (one per supervisor: `podrun-shim spawner`)
    const spawners = pidsWithCmdline('spawner', 'podrun-shim').filter((p) => {
      try {
        return Number(fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1]) === supPid;
      } catch {
        return false;
      }
    });
    const supKb = rssKb(supPid) + spawners.reduce((n, p) => n + rssKb(p), 0);
    const monKb = monitors.reduce((n, p) => n + rssKb(p), 0);
    const perPod = (supKb + monKb) / PODS / 1024;
    console.log(`memory, ${PODS} running two-container pods:`);
    console.log(`  podrun: supervisor${spawners.length ? ' + its spawner' : ''} ${(supKb / 1024).toFixed(1)} MB + ${monitors.length} monitors ${(monKb / 1024).toFixed(1)} MB → ${perPod.toFixed(2)} MB per pod (target < 15 MB)`);
    results.podrunMbPerPod = perPod;
    for (const f of files) timed(...podrun('down', f));

    if (hasPodman) {
      const pfiles = files.map((f, i) => {
        const pf = path.join(tmp, `pm-${i}.yaml`);
        fs.writeFileSync(pf, podYaml(`podman-bench-${id}-m${i}`, image));
        return pf;
      });
      for (const f of pfiles) {
        podmanPods.push(f);
        timed('podman', ['kube', 'play', '--tls-verify=false', f], pmEnv);
      }
      await sleep(1000);
      let kb = 0;
      let conmons = 0;
      let infras = 0;
      const ids = execFileSync('podman', ['ps', '-a', '--filter', `name=podman-bench-${id}`, '--format', '{{.ID}}'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
      const infraIds = execFileSync('podman', ['pod', 'ps', '--filter', `name=podman-bench-${id}`, '--format', '{{.InfraID}}'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
      for (const cid of [...new Set([...ids, ...infraIds])]) {
        const [conmon, pid] = execFileSync('podman', ['inspect', '--format', '{{.State.ConmonPid}} {{.State.Pid}}', cid], { encoding: 'utf8' }).trim().split(' ').map(Number);
        kb += rssKb(conmon);
        conmons++;
        if (infraIds.some((x) => cid.startsWith(x) || x.startsWith(cid))) {
          kb += rssKb(pid);
          infras++;
        }
      }
      const pm = kb / PODS / 1024;
      console.log(`  podman: ${conmons} conmon + ${infras} infra processes → ${pm.toFixed(2)} MB per pod`);
      results.podmanMbPerPod = pm;
      for (const f of [...podmanPods]) {
        timed('podman', ['kube', 'down', f], pmEnv);
        podmanPods.splice(podmanPods.indexOf(f), 1);
      }
    }
    return results;
  } finally {
    for (const f of podmanPods) spawnSync('podman', ['kube', 'down', f], { stdio: 'ignore', env: pmEnv });
    // the supervisor first (its containers keep running), then gc removes every pod it owned
    const supPid = livePid(path.join(tmp, 'run'));
    if (supPid) {
      try {
        process.kill(supPid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await sleep(200);
    }
    spawnSync(BIN, [...g, 'gc'], { env, stdio: 'ignore' });
    reg.child.kill('SIGTERM');
    await sleep(300);
    if (hasPodman) spawnSync('podman', ['rmi', '-f', `${reg.host}/library/busybox:latest`], { stdio: 'ignore' });
    try {
      fs.rmSync(tmp, { recursive: true, force: true });
    } catch (err) {
      console.error(`bench/pod.mjs: cannot remove ${tmp}: ${err.message}`);
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  run().then(
    (r) => console.log(JSON.stringify(r)),
    (err) => {
      console.error(err?.stack ?? String(err));
      process.exitCode = 1;
    },
  );
}
