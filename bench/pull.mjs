#!/usr/bin/env node
// Cold pull + unpack of a ~340 MB, 4-layer image from a loopback docker-registry:
// podrun vs `skopeo copy … oci:` + `umoci raw unpack` vs `podman pull`, alternating, 3 rounds,
// median ratios and podrun's peak RSS. Not a test: nothing here asserts a time.
//
// The image is built once from trees of this Debian host (/usr/lib/gcc/…/12, /usr/share/doc,
// /usr/lib/python3.11, /usr/share/perl; about 9,600 entries) and cached as an OCI layout in
// $PODRUN_BENCH_CACHE (default /var/tmp/podrun-bench). Each run starts its own registry on a
// free 127.0.0.1 port and stops it by pid; every tool gets a fresh temp root.
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
const ROUNDS = Number(process.env.PODRUN_BENCH_ROUNDS || 3);
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

/** Runs a command under /usr/bin/time -v; returns wall seconds and max RSS (kB). */
function timed(argv, env = process.env) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-v', ...argv], { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? 0);
  const cpu = Number(/User time \(seconds\): ([\d.]+)/.exec(r.stderr)?.[1] ?? 0) + Number(/System time \(seconds\): ([\d.]+)/.exec(r.stderr)?.[1] ?? 0);
  return { secs, rss, cpu };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run() {
  for (const t of ['/usr/bin/docker-registry', '/usr/bin/time']) if (!fs.existsSync(t)) throw new Error(`${t} is missing`);
  const layout = await buildCachedImage();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-bench-pull-'));
  const reg = await startRegistry(work);
  const ref = `${reg.host}/bench/debian-trees:1`;
  const results = { podrun: [], skopeoUmoci: [], skopeo: [], umoci: [], podman: [], podrunRss: [], cpu: { podrun: [], skopeoUmoci: [], podman: [] } };
  try {
    execFileSync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:${TAG}`, `docker://${ref}`], { stdio: 'ignore' });
    console.log(`image: ${LAYERS.length} layers, ${(fs.readdirSync(path.join(layout, 'blobs/sha256')).reduce((a, n) => a + fs.statSync(path.join(layout, 'blobs/sha256', n)).size, 0) / 1e6).toFixed(0)} MB compressed; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores`);
    const tools = ['podrun', 'skopeo+umoci'];
    if (has('podman')) tools.push('podman');
    else console.log('podman is not installed: skipped');
    for (let round = 0; round < ROUNDS; round++) {
      // rotate the order each round so no tool always runs first
      const order = tools.map((_, i) => tools[(i + round) % tools.length]);
      for (const tool of order) {
        // flush the previous tool's dirty pages so they are not written back on the next one's time
        spawnSync('sync');
        const dir = fs.mkdtempSync(path.join(work, `${tool.replace('+', '-')}-`));
        try {
          if (tool === 'podrun') {
            const r = timed([podrunBin, '--root', dir, '--registry-config', path.join(dir, 'none.yaml'), 'pull', '-q', ref]);
            results.podrun.push(r.secs);
            results.podrunRss.push(r.rss);
            results.cpu.podrun.push(r.cpu);
          } else if (tool === 'skopeo+umoci') {
            const a = timed(['skopeo', 'copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}/layout:b`]);
            const b = timed(['umoci', 'raw', 'unpack', '--image', `${dir}/layout:b`, `${dir}/rootfs`]);
            results.skopeo.push(a.secs);
            results.umoci.push(b.secs);
            results.skopeoUmoci.push(a.secs + b.secs);
            results.cpu.skopeoUmoci.push(a.cpu + b.cpu);
          } else {
            const r = timed(['podman', '--root', `${dir}/storage`, '--runroot', `${dir}/run`, '--storage-driver', 'overlay', 'pull', '-q', '--tls-verify=false', ref]);
            results.podman.push(r.secs);
            results.cpu.podman.push(r.cpu);
            spawnSync('podman', ['--root', `${dir}/storage`, '--runroot', `${dir}/run`, '--storage-driver', 'overlay', 'rmi', '-a', '-f'], { stdio: 'ignore' });
          }
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
      console.log(`round ${round + 1} (load ${os.loadavg()[0].toFixed(1)}): podrun ${results.podrun.at(-1).toFixed(2)} s, skopeo+umoci ${results.skopeoUmoci.at(-1).toFixed(2)} s${results.podman.length ? `, podman ${results.podman.at(-1).toFixed(2)} s` : ''}`);
    }
  } finally {
    reg.child.kill('SIGTERM');
    await new Promise((r) => (reg.child.exitCode !== null ? r() : reg.child.once('exit', r)));
    fs.rmSync(work, { recursive: true, force: true });
  }
  const m = {
    podrun: median(results.podrun),
    skopeoUmoci: median(results.skopeoUmoci),
    skopeo: median(results.skopeo),
    umoci: median(results.umoci),
    podman: results.podman.length ? median(results.podman) : undefined,
    podrunPeakRssMB: Math.max(...results.podrunRss) / 1024,
    cpu: {
      podrun: median(results.cpu.podrun),
      skopeoUmoci: median(results.cpu.skopeoUmoci),
      podman: results.cpu.podman.length ? median(results.cpu.podman) : undefined,
    },
  };
  console.log(`median podrun pull+unpack:        ${m.podrun.toFixed(2)} s (peak RSS ${m.podrunPeakRssMB.toFixed(0)} MB; target < 150 MB)`);
  console.log(`median skopeo copy + umoci unpack: ${m.skopeoUmoci.toFixed(2)} s (${m.skopeo.toFixed(2)} + ${m.umoci.toFixed(2)})  ratio podrun/(skopeo+umoci) = ${(m.podrun / m.skopeoUmoci).toFixed(2)}`);
  if (m.podman !== undefined) console.log(`median podman pull:                ${m.podman.toFixed(2)} s  ratio podrun/podman = ${(m.podrun / m.podman).toFixed(2)} (target <= 0.5)`);
  // On a shared, loaded machine wall times swing 2x between rounds; CPU seconds (user + sys) are steadier.
  console.log(`median CPU seconds (user+sys): podrun ${m.cpu.podrun.toFixed(1)}, skopeo+umoci ${m.cpu.skopeoUmoci.toFixed(1)}${m.cpu.podman !== undefined ? `, podman ${m.cpu.podman.toFixed(1)}  ratio podrun/podman = ${(m.cpu.podrun / m.cpu.podman).toFixed(2)}` : ''}`);
  return { name: 'pull', medians: m, ratios: { vsSkopeoUmoci: m.podrun / m.skopeoUmoci, vsPodman: m.podman ? m.podrun / m.podman : undefined }, raw: results };
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1] === fileURLToPath(import.meta.url)) {
  run().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
