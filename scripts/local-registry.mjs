#!/usr/bin/env node
// A local registry for the quick start and labs: Debian's docker-registry on 127.0.0.1:5000.
//
//   node scripts/local-registry.mjs start    start it in the background (data, log, pid file below)
//   node scripts/local-registry.mjs seed     push library/busybox:latest built from busybox-static
//   node scripts/local-registry.mjs status   exit 0 when it answers, 3 when it is not running
//   node scripts/local-registry.mjs stop     stop the process named in the pid file
//
// seed imports the compiled builder from dist/: run `npm run build` first.
// Overrides (tests, a second instance): PODRUN_LOCAL_REGISTRY_ADDR (127.0.0.1:5000),
// PODRUN_LOCAL_REGISTRY_DIR (/var/lib/podrun/local-registry), PODRUN_LOCAL_REGISTRY_PID
// (/run/podrun/local-registry.pid), PODRUN_BUSYBOX (/bin/busybox).
// It never writes /etc/podrun/registries.yaml; `seed` prints the snippet that points docker.io here.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = '/usr/bin/docker-registry';
const addr = process.env.PODRUN_LOCAL_REGISTRY_ADDR || '127.0.0.1:5000';
const dataDir = resolve(process.env.PODRUN_LOCAL_REGISTRY_DIR || '/var/lib/podrun/local-registry');
const pidFile = resolve(process.env.PODRUN_LOCAL_REGISTRY_PID || '/run/podrun/local-registry.pid');
const logFile = join(dataDir, 'registry.log');
const configFile = join(dataDir, 'config.yml');
const busybox = process.env.PODRUN_BUSYBOX || '/bin/busybox';
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function fail(msg, code = 1) {
  process.stderr.write(`local-registry: ${msg}\n`);
  process.exit(code);
}

function readPid() {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The pid from the pid file, only if that process is still a docker-registry. */
function runningPid() {
  const pid = readPid();
  if (!pid) return undefined;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('docker-registry') ? pid : undefined;
  } catch {
    return undefined;
  }
}

function ping() {
  return new Promise((res) => {
    const req = request(`http://${addr}/v2/`, { timeout: 1000 }, (r) => {
      r.resume();
      res(r.statusCode === 200 || r.statusCode === 401);
    });
    req.on('error', () => res(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function start() {
  if (!existsSync(BIN)) fail(`${BIN} is missing: apt-get install docker-registry`);
  const pid = runningPid();
  if (pid && (await ping())) {
    console.log(`local registry already running on http://${addr} (pid ${pid})`);
    return;
  }
  if (await ping()) fail(`something else already answers on http://${addr}; choose another PODRUN_LOCAL_REGISTRY_ADDR`);
  mkdirSync(join(dataDir, 'data'), { recursive: true });
  mkdirSync(dirname(pidFile), { recursive: true });
  writeFileSync(
    configFile,
    [
      '# Written by podrun scripts/local-registry.mjs',
      'version: 0.1',
      'log:',
      '  level: info',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dataDir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${addr}`,
      'health:',
      '  storagedriver:',
      '    enabled: false',
      '',
    ].join('\n'),
  );
  const fd = openSync(logFile, 'a');
  const child = spawn(BIN, ['serve', configFile], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  writeFileSync(pidFile, `${child.pid}\n`);
  child.unref();
  for (let i = 0; i < 150; i++) {
    if (await ping()) {
      console.log(`local registry running on http://${addr} (pid ${child.pid}, data ${dataDir}, log ${logFile})`);
      return;
    }
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
  try {
    process.kill(child.pid, 'SIGKILL');
  } catch {}
  rmSync(pidFile, { force: true });
  fail(`docker-registry did not answer on http://${addr}/v2/ within 15 s; log ${logFile}:\n${tail}`);
}

async function stop() {
  const pid = runningPid();
  if (!pid) {
    rmSync(pidFile, { force: true });
    console.log('local registry is not running');
    return;
  }
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && runningPid() === pid; i++) await sleep(100);
  if (runningPid() === pid) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 50 && runningPid() === pid; i++) await sleep(100);
  rmSync(pidFile, { force: true });
  console.log(`local registry stopped (pid ${pid})`);
}

async function status() {
  const pid = runningPid();
  const up = await ping();
  if (pid && up) console.log(`running on http://${addr} (pid ${pid}, data ${dataDir})`);
  else if (up) console.log(`something answers on http://${addr}, but not the process in ${pidFile}`);
  else console.log('not running');
  process.exit(pid && up ? 0 : 3);
}

async function seed() {
  if (!(await ping())) fail(`no registry answers on http://${addr}; run "node scripts/local-registry.mjs start" first`);
  const builderPath = join(repoRoot, 'dist/image/builder.js');
  if (!existsSync(builderPath)) fail(`${builderPath} is missing: run "npm run build" first`);
  if (!existsSync(busybox)) fail(`${busybox} is missing: apt-get install busybox-static`);
  const { buildImage, busyboxImageSpec, pushImage } = await import(builderPath);
  const image = await buildImage(busyboxImageSpec(busybox));
  const ref = `${addr}/library/busybox:latest`;
  const digest = await pushImage(ref, image, { credentials: () => undefined });
  const size = image.layers.reduce((n, l) => n + l.descriptor.size, 0) + image.config.length;
  console.log(`pushed ${ref}@${digest} (${image.layers.length} layer, ${(size / 1024 / 1024).toFixed(1)} MB, from ${busybox})`);
  console.log('');
  console.log('To serve docker.io pulls from it, put this in /etc/podrun/registries.yaml:');
  console.log('');
  console.log('registries:');
  console.log('  docker.io:');
  console.log('    mirrors:');
  console.log(`      - http://${addr}`);
}

const verbs = { start, stop, status, seed };
const verb = process.argv[2];
if (!verbs[verb]) fail('usage: node scripts/local-registry.mjs start|stop|status|seed', 2);
verbs[verb]().catch((err) => fail(err?.stack || String(err)));
