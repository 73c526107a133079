/**
 * The background supervisor: one Node process per run root watching many pods, so a detached
 * pod costs a share of one Node process plus a small native monitor per container.
 *
 * - Started on demand by `podrun up -d` (ensureSupervisor), exits when no pod it watches runs.
 * - Listens on <run-root>/supervisor.sock (mode 0600, root only): one JSON request per
 *   connection, one JSON answer line. Requests: {op:'ping'}, {op:'up', pods, images, …} (parsed
 *   plans), {op:'up-text', text, source, …} (the manifest as written: the supervisor parses it,
 *   so `podrun up -d` loads neither yaml nor zod; it carries the caller's root, logRoot and
 *   registryConfig, and a supervisor started with others refuses it), {op:'down', key,
 *   gracePeriodSeconds}, {op:'down-text', text, source, gracePeriodSeconds} (`podrun down FILE`
 *   in one round trip), {op:'pod-names', text, source} (the pods a manifest names).
 *   Unknown fields are ignored, unknown ops refused: a supervisor from before an upgrade
 *   answers `down-text` with an error and the CLI falls back to `pod-names` + `down`.
 * - Stays up PODRUN_SUPERVISOR_IDLE_MS (default 5 s) after its last pod and request, so a
 *   later `up -d` finds the parser and image code already loaded.
 * - On start it re-adopts pods whose owner died (a SIGKILLed supervisor): the containers kept
 *   running under their monitors; exits that happened meanwhile are read from the exit files.
 * - SIGTERM/SIGINT: stops listening and exits WITHOUT stopping pods (the next one re-adopts).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PodrunError, isPodrunError } from '../util/errors.js';
import type { ImageRecord } from '../image/types.js';
import type { ManifestSet, PodPlan } from '../spec/plan.js';
import type { ImageService } from '../image/service.js';
import type { PodRuntime, PodSettings, RuntimeOptions, UpOptions } from './api.js';
import { podKey, podRunDir, supervisorPidFile, supervisorSocket, type RuntimePaths } from './paths.js';
import { acquireLock, fromJson, readState } from './state.js';
import { isNoSupervisor, supervisorRequest } from './client.js';

export { supervisorRequest };

export interface SupervisorOptions extends RuntimeOptions {
  /** Exit after this long without running pods and requests (default env
   * PODRUN_SUPERVISOR_IDLE_MS or DEFAULT_IDLE_MS: a later `up -d` finds it warm). */
  idleMs?: number;
}

/**
 * How long an idle supervisor (no pod, no request) stays up. 5 s keeps a quick `down` + `up`
 * warm and lets the tests see it leave after the last `down`; an on-demand service would rather
 * linger minutes (PODRUN_SUPERVISOR_IDLE_MS=300000): it costs no CPU while it waits.
 */
export const DEFAULT_IDLE_MS = 5_000;

/**
 * The manifest as the user wrote it; the supervisor parses it (spec errors come back formatted,
 * warnings as lines) and checks the images in the store. Images it cannot find (and that may be
 * pulled) come back in `needPull` without anything created: the CLI pulls them with its progress
 * display and asks again with them listed in `pulled`.
 */
export interface UpTextRequest {
  op: 'up-text';
  text: string;
  /** File name for messages ("pod.yaml:12: …"). */
  source: string;
  replace?: boolean;
  /** References the CLI has just pulled: not pulled again for imagePullPolicy Always. */
  pulled?: string[];
  wait?: boolean;
  timeoutMs?: number;
  /** The caller's --cgroup-parent, --network and --cni-conf-dir, for these pods. */
  settings?: PodSettings;
  /** The caller's --root, --log-root and --registry-config (absolute): a supervisor started
   * with others refuses the request (ECONFLICT), so the CLI needs no `ping` first. */
  root?: string;
  logRoot?: string;
  registryConfig?: string;
}

/**
 * `podrun down FILE` in one round trip: the supervisor reads the pod names (without zod) and
 * stops, in order, each pod it owns. A pod it does not own (unsupervised, a foreground `up`'s)
 * comes back as 'not-mine' and the CLI takes it down itself, as before.
 */
export interface DownTextRequest {
  op: 'down-text';
  text: string;
  /** File name for messages. */
  source: string;
  gracePeriodSeconds?: number;
}

export interface DownTextPod {
  key: string;
  name: string;
  /** 'failed': the supervisor tried (message says why, when it threw) and the pod still exists. */
  result: 'removed' | 'not-running' | 'not-mine' | 'failed';
  message?: string;
}

export interface DownTextAnswer {
  pods: DownTextPod[];
}

export interface UpAnswerPod {
  key: string;
  name: string;
  namespace: string;
  created: boolean;
  error?: { code: string; message: string; hint?: string };
  status?: unknown;
}

export interface UpTextAnswer {
  warnings: string[];
  needPull?: string[];
  pods?: UpAnswerPod[];
}

/**
 * Plans are parsed by the CLI (which reports spec errors) and sent as JSON, with the image
 * records the CLI just ensured: the supervisor then loads neither the YAML/zod parser nor the
 * registry client to start a pod.
 */
export interface UpRequest {
  op: 'up';
  pods: PodPlan[];
  manifests: Pick<ManifestSet, 'configMaps' | 'secrets'>;
  /** image reference as written → the record the CLI pulled or found. */
  images: Record<string, ImageRecord>;
  replace?: boolean;
  /** Wait until every container runs before answering (default true). */
  wait?: boolean;
  timeoutMs?: number;
  settings?: PodSettings;
}

/** Runs the supervisor until idle. Resolves false when another supervisor already runs. */
export async function runSupervisor(opts: SupervisorOptions): Promise<boolean> {
  fs.mkdirSync(opts.runRoot, { recursive: true, mode: 0o700 });
  let release: () => void;
  try {
    release = await acquireLock(supervisorPidFile(opts), 0);
  } catch (err) {
    if (isPodrunError(err, 'ELOCKED')) return false;
    throw err;
  }
  const sock = supervisorSocket(opts);
  const { PodRuntime } = await import('./api.js');
  const rt = await PodRuntime.open(opts);
  rt.socket = sock;
  let svc: Promise<ImageService> | undefined;
  const images = () =>
    (svc ??= import('../image/service.js').then(({ ImageService }) => new ImageService({ root: opts.root, registryConfigPath: opts.registryConfig, events: opts.events, syscalls: rt.ctx.sys })));
  let inflight = 0;
  let lastBusy = Date.now();
  const server = net.createServer((conn) => {
    let buf = '';
    conn.on('data', (d) => {
      buf += d.toString('utf8');
      const i = buf.indexOf('\n');
      if (i < 0) return;
      const line = buf.slice(0, i);
      buf = '';
      inflight++;
      handle(rt, line, images, { root: opts.root, logRoot: opts.logRoot, registryConfig: opts.registryConfig }, sock)
        .then((res) => conn.end(JSON.stringify(res) + '\n'))
        .catch((err) => conn.end(JSON.stringify({ error: errorJson(err) }) + '\n'))
        .finally(() => {
          inflight--;
          lastBusy = Date.now();
        });
    });
    conn.on('error', () => {});
  });
  fs.rmSync(sock, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(sock, () => resolve());
  });
  fs.chmodSync(sock, 0o600);
  signalReady();
  await rt.adoptOrphans();

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    const timer = setInterval(() => {
      if (inflight > 0 || rt.activePods().length > 0) {
        lastBusy = Date.now();
        return;
      }
      if (Date.now() - lastBusy >= (opts.idleMs ?? (Number(process.env.PODRUN_SUPERVISOR_IDLE_MS) || DEFAULT_IDLE_MS))) {
        clearInterval(timer);
        resolve();
      }
    }, 250);
  });
  server.close();
  fs.rmSync(sock, { force: true });
  rt.detachAll();
  release();
  return true;
}

async function handle(rt: PodRuntime, line: string, images: () => Promise<ImageService>, info: SupervisorPaths, sock: string): Promise<Record<string, unknown>> {
  const req = fromJson<{ op: string } & Record<string, unknown>>(line);
  switch (req.op) {
    case 'ping':
      return { pid: process.pid, pods: rt.activePods(), ...info };
    case 'up':
      checkCallerPaths(req, info, sock);
      return { pods: await upPods(rt, req as unknown as UpRequest) };
    case 'up-text':
      checkCallerPaths(req, info, sock);
      return { ...(await upText(rt, req as unknown as UpTextRequest, images)) };
    case 'pod-names': {
      const { podNamesOf } = await import('../spec/pod-names.js');
      return { pods: await podNamesOf(String(req.text), String(req.source)) };
    }
    case 'down':
      await rt.downPod(String(req.key), { gracePeriodSeconds: req.gracePeriodSeconds as number | undefined });
      return { ok: true };
    case 'down-text':
      return { ...(await downText(rt, req as unknown as DownTextRequest)) };
    default:
      throw new PodrunError('EINVAL_ARG', `Cannot handle request "${req.op}": unknown operation`);
  }
}

/** Runs the parsed pods; `images` may hold registry checks still in flight (UpOptions.images). */
async function upPods(rt: PodRuntime, r: Omit<UpRequest, 'images'> & { images: UpOptions['images'] }): Promise<UpAnswerPod[]> {
  const pods: UpAnswerPod[] = [];
  for (const plan of r.pods) {
    const up = await rt.upPod(plan, { replace: r.replace, firstPullPolicy: 'IfNotPresent', manifests: r.manifests, images: r.images, settings: r.settings });
    pods.push({ key: up.key, name: plan.name, namespace: plan.namespace, created: up.created });
  }
  if (r.wait === false) return pods;
  for (const p of pods) {
    if (!p.created) continue;
    try {
      p.status = await rt.waitRunning(p.key, r.timeoutMs ?? 120_000);
    } catch (err) {
      p.error = errorJson(err);
      p.status = rt.podStatus(p.key);
    }
  }
  return pods;
}

async function upText(rt: PodRuntime, r: UpTextRequest, images: () => Promise<ImageService>): Promise<UpTextAnswer> {
  const { parseManifests, formatWarning } = await import('../spec/parse.js');
  const set = parseManifests(r.text, { source: r.source });
  const warnings = set.warnings.map(formatWarning);
  if (set.pods.length === 0) throw new PodrunError('EINVAL_SPEC', `Cannot run "${r.source}": it contains no Pod`);
  const svc = await images();
  const records: Record<string, ImageRecord | Promise<ImageRecord>> = {};
  const check: string[] = [];
  const needPull: string[] = [];
  for (const c of set.pods.flatMap((p) => [...p.initContainers, ...p.containers])) {
    if (records[c.image] || needPull.includes(c.image) || check.includes(c.image)) continue;
    const have = await svc.imageStatus(c.image);
    const complete = have !== undefined && have.layers.every((l) => fs.existsSync(l.dir));
    if (complete && (c.imagePullPolicy !== 'Always' || r.pulled?.includes(c.image))) records[c.image] = have;
    else if (complete) check.push(c.image); // Always: the registry decides; layers are cached
    else if (c.imagePullPolicy === 'Never') records[c.image] = await svc.ensureImage(c.image, 'Never'); // throws the usual error
    else needPull.push(c.image);
  }
  if (needPull.length) return { warnings, needPull };
  // The registry is asked while the sandbox is made (upPod awaits the answer before the first
  // container, and removes the sandbox again if it is an error); kubelet too makes the sandbox
  // before it pulls. Marked handled here: a pod that turns out unchanged never awaits it.
  for (const ref of check) {
    const p = svc.pullImage(ref);
    p.catch(() => {});
    records[ref] = p;
  }
  const manifests = { configMaps: set.configMaps, secrets: set.secrets };
  return { warnings, pods: await upPods(rt, { op: 'up', pods: set.pods, manifests, images: records, replace: r.replace, wait: r.wait, timeoutMs: r.timeoutMs, settings: r.settings }) };
}

/** A request that names the caller's paths (up-text from this installation's CLI) is checked. */
function checkCallerPaths(req: Record<string, unknown>, info: SupervisorPaths, sock: string): void {
  if (typeof req.root !== 'string' || typeof req.logRoot !== 'string') return; // a CLI that pinged first
  const registryConfig = typeof req.registryConfig === 'string' ? req.registryConfig : undefined;
  checkSamePaths({ root: req.root, logRoot: req.logRoot, runRoot: '', registryConfig }, info, sock);
}

async function downText(rt: PodRuntime, r: DownTextRequest): Promise<DownTextAnswer> {
  const { podNamesOf } = await import('../spec/pod-names.js');
  const paths = rt.ctx.paths;
  const pods: DownTextPod[] = [];
  for (const p of await podNamesOf(String(r.text), String(r.source))) {
    const key = podKey(p.namespace, p.name);
    const st = readState(paths, key);
    if (!st && !fs.existsSync(podRunDir(paths, key))) {
      pods.push({ key, name: p.name, result: 'not-running' });
      continue;
    }
    if (st?.owner?.pid !== process.pid) {
      pods.push({ key, name: p.name, result: 'not-mine' });
      continue;
    }
    try {
      await rt.downPod(key, { gracePeriodSeconds: r.gracePeriodSeconds });
    } catch (err) {
      pods.push({ key, name: p.name, result: 'failed', message: (err as Error).message });
      continue;
    }
    pods.push({ key, name: p.name, result: fs.existsSync(podRunDir(paths, key)) ? 'failed' : 'removed' });
  }
  return { pods };
}

function errorJson(err: unknown): { code: string; message: string; hint?: string } {
  if (isPodrunError(err)) return { code: err.code, message: err.message, hint: err.hint };
  return { code: 'EINTERNAL', message: (err as Error)?.message ?? String(err) };
}

/** What a supervisor was started with, besides its run root (answered to 'ping'). */
interface SupervisorPaths {
  root: string;
  logRoot: string;
  registryConfig?: string;
}

/**
 * One supervisor serves a run root, with the image store, log root and registry config it was
 * started with: a caller that asks for others would get pods that use the supervisor's, so it is
 * refused with what to do.
 */
function checkSamePaths(want: RuntimePaths & { registryConfig?: string }, got: Partial<SupervisorPaths>, sock: string): void {
  const diffs: string[] = [];
  if (got.root !== undefined && path.resolve(got.root) !== path.resolve(want.root)) diffs.push(`--root "${got.root}"`);
  if (got.logRoot !== undefined && path.resolve(got.logRoot) !== path.resolve(want.logRoot)) diffs.push(`--log-root "${got.logRoot}"`);
  if (got.registryConfig !== undefined && want.registryConfig !== undefined && path.resolve(got.registryConfig) !== path.resolve(want.registryConfig)) {
    diffs.push(`--registry-config "${got.registryConfig}"`);
  }
  if (!diffs.length) return;
  throw new PodrunError('ECONFLICT', `Cannot use the supervisor at "${sock}": it runs with ${diffs.join(', ')}`, {
    hint: 'use the same options, or another --run-root (a supervisor exits shortly after its last pod is down)',
  });
}

/**
 * The supervisor process: Node on bin/podrun.cjs with the options bin/podrun gives it, and
 * NODE_EXTRA_CA_CERTS handed over as bin/podrun does (for a caller that did not come through it).
 */
function supervisorCommand(args: string[]): { file: string; args: string[]; env: NodeJS.ProcessEnv } {
  const env: NodeJS.ProcessEnv = { ...process.env, [READY_FD_ENV]: '3' };
  if (env.NODE_EXTRA_CA_CERTS) {
    env.PODRUN_EXTRA_CA_CERTS = env.NODE_EXTRA_CA_CERTS;
    delete env.NODE_EXTRA_CA_CERTS;
  }
  return { file: process.execPath, args: ['--liftoff-only', fileURLToPath(new URL('../../bin/podrun.cjs', import.meta.url)), ...args], env };
}

/** Set by ensureSupervisor: the fd on which the new supervisor says "ready" once it listens. */
const READY_FD_ENV = 'PODRUN_SUPERVISOR_READY_FD';

/** Tells the process that started this supervisor that the socket listens (then closes the fd). */
function signalReady(): void {
  const fd = Number(process.env[READY_FD_ENV]);
  delete process.env[READY_FD_ENV]; // not for children
  if (!Number.isInteger(fd) || fd < 3) return;
  try {
    fs.writeSync(fd, 'ready\n');
    fs.closeSync(fd);
  } catch {
    /* the starter is gone */
  }
}

/**
 * Sends one request to this run root's supervisor, starting one (ensureSupervisor) only when
 * none listens: the warm path is one round trip. Requests that name the caller's paths
 * (UpTextRequest root/logRoot/registryConfig) are checked by the supervisor itself.
 */
export async function requestStartingSupervisor(paths: RuntimePaths & { registryConfig?: string }, msg: object, timeoutMs: number): Promise<Record<string, unknown>> {
  try {
    return await supervisorRequest(supervisorSocket(paths), msg, timeoutMs);
  } catch (err) {
    if (!isNoSupervisor(err)) throw err;
  }
  return supervisorRequest(await ensureSupervisor(paths), msg, timeoutMs);
}

/**
 * Makes sure a supervisor serves this run root: pings the socket, else starts
 * `podrun supervisor` detached (its output goes to <run-root>/supervisor.log) and waits for it.
 */
export async function ensureSupervisor(paths: RuntimePaths & { registryConfig?: string }, timeoutMs = 15_000): Promise<string> {
  const sock = supervisorSocket(paths);
  let running: Record<string, unknown> | undefined;
  try {
    running = await supervisorRequest(sock, { op: 'ping' }, 2000);
  } catch {
    /* start one */
  }
  if (running) {
    checkSamePaths(paths, running as Partial<SupervisorPaths>, sock);
    return sock;
  }
  fs.mkdirSync(paths.runRoot, { recursive: true, mode: 0o700 });
  const log = fs.openSync(path.join(paths.runRoot, 'supervisor.log'), 'a', 0o600);
  const args = ['--root', paths.root, '--run-root', paths.runRoot, '--log-root', paths.logRoot];
  if (paths.registryConfig) args.push('--registry-config', paths.registryConfig);
  args.push('supervisor');
  const cmd = supervisorCommand(args);
  const child = spawn(cmd.file, cmd.args, { detached: true, stdio: ['ignore', log, log, 'pipe'], cwd: '/', env: cmd.env });
  fs.closeSync(log);
  child.unref();
  // "ready" as soon as it listens; end of file without it: it did not start, or another
  // supervisor won the race for this run root (then the pings below find that one)
  const ready = child.stdio[3] as NodeJS.ReadableStream & { unref?: () => void; destroy: () => void };
  await new Promise<void>((resolve) => {
    let text = '';
    const timer = setTimeout(resolve, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    ready.on('data', (d) => {
      text += String(d);
      if (text.includes('ready\n')) done();
    });
    ready.on('end', done);
    ready.on('error', done);
  });
  ready.destroy();
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      await supervisorRequest(sock, { op: 'ping' }, 2000);
      return sock;
    } catch (err) {
      if (Date.now() > end) {
        throw new PodrunError('ETIMEOUT', `Cannot start the supervisor: no answer on "${sock}" after ${timeoutMs / 1000} s`, {
          cause: err,
          hint: `see ${path.join(paths.runRoot, 'supervisor.log')}`,
        });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
