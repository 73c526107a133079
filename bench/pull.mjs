#!/usr/bin/env node
// Cold pull + unpack of a ~340 MB, 4-layer image from a loopback docker-registry:
// podrun vs `skopeo copy … oci:` + `umoci raw unpack` vs `podman pull`, alternating,
// 5 rounds (PODRUN_BENCH_ROUNDS), median ratios, user and sys CPU apart, and podrun's peak RSS.
// PODRUN_BENCH_TOOLS=podrun,podman limits the tools. Not a test: nothing here asserts a time.
//
// The image is built once from trees of this Debian host (/usr/lib/gcc/…/12, /usr/share/doc,
// /usr/lib/python3.11, /usr/share/perl; about 9,600 entries) and cached as an OCI layout in
// $PODRUN_BENCH_CACHE (default /var/tmp/podrun-bench). Each run starts its own registry on a
// free 127.0.0.1 port and stops it by pid; every tool gets a fresh root in a run dir beside the
// cache ($PODRUN_BENCH_WORK to choose another parent), all removed at the end.
//
//   node bench/pull.mjs            (after npm run build)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const podrunBin = path.join(repo, 'bin/podrun');
const CACHE = process.env.PODRUN_BENCH_CACHE || '/var/tmp/podrun-bench';
const ROUNDS = Number(process.env.PODRUN_BENCH_ROUNDS || 5);
const LAYERS = ['/usr/lib/gcc/x86_64-linux-gnu/12', '/usr/share/doc', '/usr/lib/python3.11', '/usr/share/perl'];
const TAG = 'bench';

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

async function buildCachedImage() {
  const layout = path.join(CACHE, `layout-v1`);
  if (fs.existsSync(path.join(layout, 'index.json'))) return layout;
  fs.mkdirSync(CACHE, { recursive: true });
  const { buildImage, disposeImage } = await import(path.join(repo, 'dist/image/builder.js'));
  const { ImageStore } = await import(path.join(repo, 'dist/image/store.js'));
  console.log(`building the bench image from ${LAYERS.join(', ')} (once, cached in ${layout})`);
  const built = await buildImage({ layers: LAYERS.map((d) => ({ hostDir: d, createdBy: `host ${d}` })), config: { Cmd: ['/bin/sh'] } });
  const tmp = `${layout}.tmp-${process.pid}`;
  const store = new ImageStore(tmp);
  store.init();
  for (const l of built.layers) {
    const dest = store.blobPath(l.descriptor.digest);
    if (Buffer.isBuffer(l.data)) fs.writeFileSync(dest, l.data);
    else fs.copyFileSync(l.data.path, dest);
  }
  store.putBlob(built.config);
  store.putBlob(built.manifest);
  await store.tag(TAG, { mediaType: built.descriptor.mediaType, digest: built.descriptor.digest, size: built.descriptor.size });
  await disposeImage(built);
  fs.renameSync(path.join(tmp, 'store'), layout);
  fs.rmSync(tmp, { recursive: true, force: true });
  return layout;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function startRegistry(dir) {
  const port = await freePort();
  const cfg = path.join(dir, 'registry.yml');
  fs.writeFileSync(
    cfg,
    ['version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true', 'storage:', '  filesystem:', `    rootdirectory: ${dir}/data`, 'http:', `  addr: 127.0.0.1:${port}`, ''].join('\n'),
  );
  const log = fs.openSync(path.join(dir, 'registry.log'), 'a');
  const child = spawn('/usr/bin/docker-registry', ['serve', cfg], { stdio: ['ignore', log, log], env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' } });
  fs.closeSync(log);
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v2/`);
      if (r.status === 200) return { child, host: `127.0.0.1:${port}` };
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('docker-registry did not start');
}

/** Runs a command under /usr/bin/time -v; returns wall seconds, user and sys CPU seconds and max RSS (kB). */
function timed(argv, env = process.env) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-v', ...argv], { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  const num = (re) => Number(re.exec(r.stderr)?.[1] ?? 0);
  const user = num(/User time \(seconds\): ([\d.]+)/);
  const sys = num(/System time \(seconds\): ([\d.]+)/);
  return { secs, user, sys, cpu: user + sys, rss: num(/Maximum resident set size \(kbytes\): (\d+)/) };
}

const sum = (a, b) => ({ secs: a.secs + b.secs, user: a.user + b.user, sys: a.sys + b.sys, cpu: a.cpu + b.cpu, rss: Math.max(a.rss, b.rss) });

/** Dirty + Writeback of /proc/meminfo, in MB. */
function dirtyMB() {
  const mi = fs.readFileSync('/proc/meminfo', 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(mi)?.[1] ?? 0);
  return (kb('Dirty') + kb('Writeback')) / 1024;
}

/**
 * Before each tool: write back what the previous one left dirty (so no tool pays for another's
 * writeback), and wait until the kernel has nearly no dirty pages left (others may be writing too).
 */
async function settle() {
  spawnSync('sync');
  for (let i = 0; i < 100 && dirtyMB() > 32; i++) {
    await new Promise((r) => setTimeout(r, 200));
    if (i % 10 === 9) spawnSync('sync');
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (r) => `${r.secs.toFixed(2)} s (user ${r.user.toFixed(2)} + sys ${r.sys.toFixed(2)})`;

const TOOLS = { podrun: 'podrun', 'skopeo+umoci': 'skopeoUmoci', podman: 'podman' };

export async function run() {
  for (const t of ['/usr/bin/docker-registry', '/usr/bin/time']) if (!fs.existsSync(t)) throw new Error(`${t} is missing`);
  const layout = await buildCachedImage();
  // The tools write beside the image cache, not in the temp dir: on ext4 the files of a new
  // directory go to its parent's block group, and tests that create and delete thousands of files
  // in /tmp make every file created there expensive for a few minutes (see the note below).
  const workParent = process.env.PODRUN_BENCH_WORK || CACHE;
  fs.mkdirSync(workParent, { recursive: true });
  const since = (Date.now() - Number(fs.readFileSync(path.join(workParent, 'last-cleanup'), { encoding: 'utf8', flag: 'a+' }) || 0)) / 1000;
  if (since < 300) {
    console.log(`note: the previous run removed its trees ${since.toFixed(0)} s ago in ${workParent}; creating files there is slower for up to 5 min (all tools pay, but the ratios move)`);
  }
  const work = fs.mkdtempSync(path.join(workParent, 'run-'));
  const reg = await startRegistry(work);
  const ref = `${reg.host}/bench/debian-trees:1`;
  /** key → list of { secs, user, sys, cpu, rss } */
  const runs = { podrun: [], skopeoUmoci: [], skopeo: [], umoci: [], podman: [] };
  const podmanRoots = [];
  try {
    execFileSync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:${TAG}`, `docker://${ref}`], { stdio: 'ignore' });
    console.log(`image: ${LAYERS.length} layers, ${(fs.readdirSync(path.join(layout, 'blobs/sha256')).reduce((a, n) => a + fs.statSync(path.join(layout, 'blobs/sha256', n)).size, 0) / 1e6).toFixed(0)} MB compressed; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores`);
    const only = process.env.PODRUN_BENCH_TOOLS?.split(',').map((t) => t.trim());
    const tools = Object.keys(TOOLS).filter((t) => !only || only.includes(t));
    if (tools.includes('podman') && !has('podman')) {
      console.log('podman is not installed: skipped');
      tools.splice(tools.indexOf('podman'), 1);
    }
    // Nothing is deleted until all rounds are done. On a filesystem like this host's (ext4 without
    // a journal), creating files right after thousands were deleted is several times slower: the
    // inode allocator walks past every recently freed inode (5 s, or 5 min while its inode table
    // block is dirty). Deleting one tool's tree before the next tool ran made later rounds 2x slower
    // for whoever ran after a big delete, and the penalty grew round by round.
    for (let round = 0; round < ROUNDS; round++) {
      // rotate the order each round so no tool always runs first
      const order = tools.map((_, i) => tools[(i + round) % tools.length]);
      const line = [];
      for (const tool of order) {
        await settle();
        const dir = fs.mkdtempSync(path.join(work, `${tool.replace('+', '-')}-`));
        let r;
        if (tool === 'podrun') {
          r = timed([podrunBin, '--root', dir, '--registry-config', path.join(dir, 'none.yaml'), 'pull', '-q', ref]);
        } else if (tool === 'skopeo+umoci') {
          const a = timed(['skopeo', 'copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}/layout:b`]);
          const b = timed(['umoci', 'raw', 'unpack', '--image', `${dir}/layout:b`, `${dir}/rootfs`]);
          runs.skopeo.push(a);
          runs.umoci.push(b);
          r = sum(a, b);
        } else {
          podmanRoots.push(dir);
          r = timed(['podman', '--root', `${dir}/storage`, '--runroot', `${dir}/run`, '--storage-driver', 'overlay', 'pull', '-q', '--tls-verify=false', ref]);
        }
        runs[TOOLS[tool]].push(r);
        line.push(`${tool} ${fmt(r)}`);
      }
      console.log(`round ${round + 1} (load ${os.loadavg()[0].toFixed(1)}): ${line.join(', ')}`);
    }
  } finally {
    reg.child.kill('SIGTERM');
    await new Promise((r) => (reg.child.exitCode !== null ? r() : reg.child.once('exit', r)));
    for (const dir of podmanRoots) {
      spawnSync('podman', ['--root', `${dir}/storage`, '--runroot', `${dir}/run`, '--storage-driver', 'overlay', 'rmi', '-a', '-f'], { stdio: 'ignore' });
    }
    fs.rmSync(work, { recursive: true, force: true });
    fs.writeFileSync(path.join(workParent, 'last-cleanup'), String(Date.now()));
  }
  const med = (key, field) => (runs[key].length ? median(runs[key].map((r) => r[field])) : undefined);
  const m = {
    podrun: med('podrun', 'secs'),
    skopeoUmoci: med('skopeoUmoci', 'secs'),
    skopeo: med('skopeo', 'secs'),
    umoci: med('umoci', 'secs'),
    podman: med('podman', 'secs'),
    podrunPeakRssMB: runs.podrun.length ? Math.max(...runs.podrun.map((r) => r.rss)) / 1024 : undefined,
    cpu: { podrun: med('podrun', 'cpu'), skopeoUmoci: med('skopeoUmoci', 'cpu'), podman: med('podman', 'cpu') },
    user: { podrun: med('podrun', 'user'), skopeoUmoci: med('skopeoUmoci', 'user'), podman: med('podman', 'user') },
    sys: { podrun: med('podrun', 'sys'), skopeoUmoci: med('skopeoUmoci', 'sys'), podman: med('podman', 'sys') },
  };
  // Ratios of medians, and the median of the per-round ratios (each round runs the tools back to back).
  const perRound = (key) => runs.podrun.map((r, i) => (runs[key][i] ? r.secs / runs[key][i].secs : undefined)).filter((x) => x !== undefined);
  const cpuLine = (key) => `user ${m.user[key].toFixed(2)} + sys ${m.sys[key].toFixed(2)} = ${m.cpu[key].toFixed(2)} CPU s`;
  if (m.podrun !== undefined) console.log(`median podrun pull+unpack:         ${m.podrun.toFixed(2)} s, ${cpuLine('podrun')} (peak RSS ${m.podrunPeakRssMB.toFixed(0)} MB; target < 150 MB)`);
  if (m.skopeoUmoci !== undefined) {
    console.log(`median skopeo copy + umoci unpack: ${m.skopeoUmoci.toFixed(2)} s (${m.skopeo.toFixed(2)} + ${m.umoci.toFixed(2)}), ${cpuLine('skopeoUmoci')}`);
    if (m.podrun !== undefined) console.log(`  ratio podrun/(skopeo+umoci): time ${(m.podrun / m.skopeoUmoci).toFixed(2)} (per round median ${median(perRound('skopeoUmoci')).toFixed(2)}), CPU ${(m.cpu.podrun / m.cpu.skopeoUmoci).toFixed(2)}`);
  }
  if (m.podman !== undefined) {
    console.log(`median podman pull:                ${m.podman.toFixed(2)} s, ${cpuLine('podman')}`);
    if (m.podrun !== undefined) console.log(`  ratio podrun/podman: time ${(m.podrun / m.podman).toFixed(2)} (per round median ${median(perRound('podman')).toFixed(2)}; target <= 0.5), CPU ${(m.cpu.podrun / m.cpu.podman).toFixed(2)}`);
  }
  const raw = { ...Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.map((r) => r.secs)])), podrunRss: runs.podrun.map((r) => r.rss), runs };
  return {
    name: 'pull',
    medians: m,
    ratios: { vsSkopeoUmoci: m.podrun && m.skopeoUmoci ? m.podrun / m.skopeoUmoci : undefined, vsPodman: m.podrun && m.podman ? m.podrun / m.podman : undefined },
    raw,
  };
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1] === fileURLToPath(import.meta.url)) {
  run().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
