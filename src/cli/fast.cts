/**
 * The hot path of `podrun up -d FILE` and `podrun down FILE` when a supervisor runs: one
 * request, one answer, no other module. Node's start-up is most of such a call, and every
 * module loaded before the first byte goes out adds to it (about 2 ms per file of ours, 6 ms for
 * node:net; main.ts, parseArgs, render.ts, the runtime's client and state modules, child_process
 * and node:url were 25-30 ms). So this file imports node builtins only and handles just the plain
 * forms: global options, `up -d [--replace] FILE`, `down [--grace-period N] FILE`. Anything
 * else (help, --trace, --wait, a bad value, a missing file, no supervisor yet, images to pull,
 * an older supervisor) returns undefined and main.ts does the job with the same messages.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { GlobalOptions } from './command.js';
import type { DownTextAnswer, DownTextRequest, UpAnswerPod, UpTextAnswer, UpTextRequest } from '../runtime/supervisor.js';
import type { PodStatus } from '../runtime/controller/status.js';

interface Out {
  write(s: string): unknown;
}
export interface FastIo {
  stdout: Out;
  stderr: Out;
  env: NodeJS.ProcessEnv;
}

/** Global options that take a value (main.ts GLOBAL_OPTIONS), and the env var each sets. */
const GLOBAL_VALUES: Record<string, string | undefined> = {
  root: undefined,
  'run-root': undefined,
  'log-root': undefined,
  'registry-config': undefined,
  'cgroup-parent': 'PODRUN_CGROUP_PARENT',
  network: 'PODRUN_NETWORK',
  'cni-conf-dir': 'PODRUN_CNI_CONF_DIR',
};

interface Simple {
  verb: 'up' | 'down';
  values: Record<string, string | true>;
  positionals: string[];
}

/**
 * argv in the forms the fast path serves, else undefined. Stricter than parseArgs on purpose:
 * whatever is not certainly plain goes to main.ts, which owns every message.
 */
export function parseSimple(argv: string[]): Simple | undefined {
  let verb: 'up' | 'down' | undefined;
  const values: Record<string, string | true> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const takesValue = name in GLOBAL_VALUES || (verb === 'down' && name === 'grace-period');
      if (name in values) return undefined; // repeated: parseArgs' rule (last wins) is main's business
      if (takesValue) {
        const v = eq < 0 ? argv[++i] : a.slice(eq + 1);
        if (!v || (eq < 0 && v.startsWith('-'))) return undefined;
        values[name] = v;
      } else if (verb === 'up' && (name === 'detach' || name === 'replace') && eq < 0) values[name] = true;
      else return undefined; // --help, --trace, --wait, a verb's option before the verb, …
    } else if (a.startsWith('-') && a !== '-') {
      if (verb === 'up' && a === '-d') values.detach = true;
      else return undefined;
    } else if (!verb) {
      if (a !== 'up' && a !== 'down') return undefined;
      verb = a;
    } else positionals.push(a);
  }
  if (!verb || positionals.length !== 1) return undefined;
  if (verb === 'up' && !values.detach) return undefined;
  if (values.network !== undefined && values.network !== 'none' && values.network !== 'default') return undefined;
  return { verb, values, positionals };
}

/** The global options as main.ts resolves them (flag, else env, else default). */
export function simpleGlobal(values: Record<string, string | true>, env: NodeJS.ProcessEnv): GlobalOptions {
  const s = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  return {
    root: s('root') ?? (env.PODRUN_ROOT || '/var/lib/podrun'),
    runRoot: s('run-root') ?? (env.PODRUN_RUN_ROOT || '/run/podrun'),
    logRoot: s('log-root') ?? (env.PODRUN_LOG_ROOT || '/var/log/pods'),
    registryConfig: s('registry-config') ?? (env.PODRUN_REGISTRY_CONFIG || '/etc/podrun/registries.yaml'),
    trace: false,
  };
}

/**
 * The up-text request of `up -d`: the pods get the caller's --cgroup-parent, --network and
 * --cni-conf-dir (from `env`, where main.ts puts the flags); the paths are sent absolute so the
 * supervisor (cwd /) can refuse other ones.
 */
export function upTextRequest(file: string, text: string, replace: boolean, g: GlobalOptions, env: NodeJS.ProcessEnv): UpTextRequest {
  return {
    op: 'up-text',
    text,
    source: file,
    replace,
    settings: {
      cgroupParent: env.PODRUN_CGROUP_PARENT || 'podrun',
      network: env.PODRUN_NETWORK === 'none' ? 'none' : 'default',
      cniConfDir: env.PODRUN_CNI_CONF_DIR || undefined,
    },
    root: path.resolve(g.root),
    logRoot: path.resolve(g.logRoot),
    registryConfig: path.resolve(g.registryConfig),
  };
}

/** Prints the pods of an up-text answer as `up -d` always has; returns the exit code. */
export function printUpPods(io: { stdout: Out; stderr: Out }, pods: UpAnswerPod[]): number {
  let code = 0;
  for (const p of pods) {
    if (p.error) {
      code = 1;
      io.stderr.write(`pod/${p.name}: ${p.error.message}\n`);
      if (p.error.hint) io.stderr.write(`hint: ${p.error.hint}\n`);
    } else if (!p.created) io.stdout.write(`pod/${p.name} unchanged (already running with this spec)\n`);
    else io.stdout.write(`pod/${p.name} running (${(p.status as PodStatus | undefined)?.containerStatuses.length ?? 0} containers)\n`);
  }
  return code;
}

type Reply =
  | { kind: 'answer'; res: Record<string, unknown> }
  | { kind: 'error'; code: string; message: string; hint?: string }
  | { kind: 'no-supervisor' };

/**
 * One request on the supervisor's socket (the protocol of runtime/client.ts supervisorRequest,
 * without its imports). A failed connect is 'no-supervisor'; a supervisor that dies or stalls
 * gives the error supervisorRequest would.
 */
function ask(sock: string, msg: object, timeoutMs: number): Promise<Reply> {
  return new Promise((resolve) => {
    const conn = net.createConnection(sock);
    let buf = '';
    let connected = false;
    let done = false;
    const settle = (r: Reply): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      conn.destroy();
      settle({ kind: 'error', code: 'ETIMEOUT', message: `Cannot talk to the supervisor at "${sock}": no answer after ${timeoutMs / 1000} s` });
    }, timeoutMs);
    conn.on('connect', () => {
      connected = true;
      conn.write(JSON.stringify(msg) + '\n');
    });
    conn.on('data', (d) => {
      buf += d.toString('utf8');
      const i = buf.indexOf('\n');
      if (i < 0) return;
      conn.end();
      let res: Record<string, unknown>;
      try {
        res = JSON.parse(buf.slice(0, i)) as Record<string, unknown>;
      } catch (err) {
        settle({ kind: 'error', code: 'EINTERNAL', message: (err as Error).message });
        return;
      }
      const e = res.error as { code?: string; message?: string; hint?: string } | undefined;
      settle(e ? { kind: 'error', code: e.code ?? 'EINTERNAL', message: e.message ?? 'supervisor error', hint: e.hint } : { kind: 'answer', res });
    });
    conn.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) return settle({ kind: 'no-supervisor' });
      settle({ kind: 'error', code: 'ENOTFOUND', message: `Cannot talk to the supervisor at "${sock}": ${err.code ?? err.message}` });
    });
    conn.on('close', () =>
      settle({
        kind: 'error',
        code: 'ESTATE',
        message: `Cannot talk to the supervisor at "${sock}": it closed the connection without an answer (did it die?)`,
        hint: 'run "podrun ps" to see the pods (a new supervisor re-adopts them on the next "up -d"), or "podrun gc"',
      }),
    );
  });
}

function printError(io: FastIo, verb: string, r: { message: string; hint?: string }): number {
  io.stderr.write(`podrun ${verb}: ${r.message}\n`);
  if (r.hint) io.stderr.write(`hint: ${r.hint}\n`);
  return 1;
}

/**
 * `up -d FILE` / `down FILE` with a supervisor running, in one round trip. Returns the exit
 * code, or undefined when main.ts must do it (nothing was printed or changed then).
 */
export async function fastMain(argv: string[], io: FastIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number | undefined> {
  const simple = parseSimple(argv);
  if (!simple) return undefined;
  const file = simple.positionals[0];
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined; // main.ts says why (up), or takes it as a pod name (down)
  }
  // as main.ts: the flags reach the runtime (and a supervisor started later) through the environment
  for (const [flag, env] of Object.entries(GLOBAL_VALUES)) if (env && typeof simple.values[flag] === 'string') io.env[env] = simple.values[flag] as string;
  const g = simpleGlobal(simple.values, io.env);
  const sock = path.join(g.runRoot, 'supervisor.sock');
  if (simple.verb === 'up') {
    const r = await ask(sock, upTextRequest(file, text, simple.values.replace === true, g, io.env), 300_000);
    if (r.kind === 'no-supervisor') return undefined;
    if (r.kind === 'error') return printError(io, 'up', r);
    const res = r.res as unknown as UpTextAnswer;
    if (res.needPull?.length || !Array.isArray(res.pods)) return undefined; // main.ts pulls with its progress display
    for (const w of res.warnings ?? []) io.stderr.write(`warning: ${w}\n`);
    return printUpPods(io, res.pods);
  }
  const gp = simple.values['grace-period'];
  const grace = gp === undefined ? undefined : Number(gp);
  if (grace !== undefined && !(Number.isInteger(grace) && grace >= 0)) return undefined;
  const req: DownTextRequest = { op: 'down-text', text, source: file, gracePeriodSeconds: grace };
  const r = await ask(sock, req, ((grace ?? 3600) + 60) * 1000);
  if (r.kind === 'no-supervisor') return undefined;
  if (r.kind === 'error') return r.code === 'EINVAL_SPEC' ? printError(io, 'down', r) : undefined; // e.g. a supervisor without down-text
  const pods = (r.res as unknown as DownTextAnswer).pods;
  if (!Array.isArray(pods)) return undefined;
  let code = 0;
  let local: ((k: { key: string; label: string; mustExist: boolean }, supervisorFailed: boolean) => Promise<number>) | undefined;
  for (const p of pods) {
    if (p.result === 'removed') io.stdout.write(`pod/${p.name} removed\n`);
    else if (p.result === 'not-running') io.stdout.write(`pod/${p.name} not running\n`);
    else {
      // not this supervisor's pod, or it could not remove it: as before, from here
      if (!local) local = await localDowner(g, io, grace);
      if (p.message) io.stderr.write(`warning: The supervisor did not stop pod "${p.key}" (${p.message}); stopping it here\n`);
      code = Math.max(code, await local({ key: p.key, label: p.name, mustExist: false }, p.result === 'failed'));
    }
  }
  return code;
}

async function localDowner(g: GlobalOptions, io: FastIo, grace: number | undefined) {
  const [{ downer }, { makeRenderer }] = await Promise.all([import('./commands/down.js'), import('./render.js')]);
  const stdout = io.stdout as NodeJS.WriteStream;
  const stderr = io.stderr as NodeJS.WriteStream;
  return downer({ global: g, events: makeRenderer(g, stderr), stdout, stderr }, grace);
}
