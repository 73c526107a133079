import fs from 'node:fs';
import path from 'node:path';
import type { Command, CommandContext } from '../command.js';
import { PodrunError } from '../../util/errors.js';
import type { PodrunEvent } from '../../util/events.js';
import type { ManifestSet } from '../../spec/plan.js';
import type { ImageService } from '../../image/service.js';
import type { ImageRecord } from '../../image/types.js';
import type { UpTextAnswer, UpTextRequest } from '../../runtime/supervisor.js';
import { printUpPods, upTextRequest } from '../fast.cjs';

// Only what a verb path needs is loaded: `up -d` sends the manifest text to the supervisor,
// which keeps the parser (yaml, zod) and the image code loaded; the registry client (undici)
// is loaded only when an image must be pulled.

const COLORS = [36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96];

const command: Command = {
  name: 'up',
  summary: 'Run the pods of a manifest file (foreground with logs, or -d in the background)',
  usage: 'podrun up [-d [--wait] [--timeout 60s]] [--replace] FILE',
  description: `Pulls the images, creates each pod's sandbox and starts its containers.
In the foreground, prints every container's log lines prefixed with its name until Ctrl-C,
which stops the pods gracefully (stop signal, terminationGracePeriodSeconds, then SIGKILL) and
removes them; a pod with restartPolicy Never/OnFailure ends the command when it finishes
(exit 0 when it Succeeded). With -d, returns once every container runs (or says why one does
not) and leaves the pods to the background supervisor. A second "up" of a running pod with the
same spec does nothing; a different spec is refused unless --replace. With -d --wait, also
waits until every pod is Ready (readiness probes passed), at most --timeout (default 60s).

The background supervisor (one per --run-root) is started by the first "up -d" and watches
every detached pod; it parses the manifests itself and keeps the image code loaded. After its
last pod and request it stays up 5 more seconds (env PODRUN_SUPERVISOR_IDLE_MS, in ms; 300000
keeps it 5 minutes, at no CPU cost) so that the next "up -d" finds it warm. Global options such
as --cgroup-parent, --network and --cni-conf-dir apply to the pods of each "up -d", whatever
the running supervisor was started with.`,
  options: {
    detach: { type: 'boolean', short: 'd' },
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
    replace: { type: 'boolean' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length !== 1) throw new PodrunError('EINVAL_ARG', `Cannot run "up": expected one manifest file, got ${positionals.length}`, { hint: 'podrun up pod.yaml' });
    const file = positionals[0];
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new PodrunError('ENOTFOUND', `Cannot read manifest "${file}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (values.wait && !values.detach) throw new PodrunError('EINVAL_ARG', 'Cannot use --wait without -d: in the foreground, up runs until the pods end');
    if (values.detach) {
      const { code, pods } = await detached(ctx, file, text, Boolean(values.replace));
      if (code !== 0 || !values.wait) return code;
      const { parseDuration, waitForPod } = await import('../../runtime/controller/stored.js');
      const timeoutMs = parseDuration((values.timeout as string | undefined) ?? '60s');
      for (const p of pods) {
        const ok = await waitForPod(ctx.global, { namespace: p.namespace, name: p.name }, { kind: 'condition', type: 'Ready', value: 'True' }, timeoutMs);
        if (!ok) {
          ctx.stderr.write(`pod/${p.name}: not Ready after ${values.timeout ?? '60s'}\n`);
          return 1;
        }
        ctx.stdout.write(`pod/${p.name} ready\n`);
      }
      return 0;
    }
    const { parseManifests, formatWarning } = await import('../../spec/parse.js');
    const set = parseManifests(text, { source: file });
    for (const w of set.warnings) ctx.events({ type: 'warning', message: formatWarning(w) });
    if (set.pods.length === 0) throw new PodrunError('EINVAL_SPEC', `Cannot run "${file}": it contains no Pod`);
    const { ImageService } = await import('../../image/service.js');
    const { makePullRenderer } = await import('../progress.js');
    const progress = makePullRenderer(ctx.stderr, ctx.events, {});
    const images = new ImageService({ root: ctx.global.root, registryConfigPath: ctx.global.registryConfig, events: progress.sink });
    const records: Record<string, ImageRecord> = {};
    try {
      for (const c of set.pods.flatMap((p) => [...p.initContainers, ...p.containers])) {
        if (records[c.image]) continue;
        records[c.image] = await images.ensureImage(c.image, c.imagePullPolicy);
      }
    } finally {
      progress.finish();
    }
    return foreground(ctx, set, images, records, Boolean(values.replace));
  },
};
export default command;

/** Pulls the images the supervisor lacks (with the progress display), then asks again. */
async function pullForSupervisor(ctx: CommandContext, refs: string[]): Promise<void> {
  const { ImageService } = await import('../../image/service.js');
  const { makePullRenderer } = await import('../progress.js');
  const progress = makePullRenderer(ctx.stderr, ctx.events, {});
  const images = new ImageService({ root: ctx.global.root, registryConfigPath: ctx.global.registryConfig, events: progress.sink });
  try {
    for (const ref of refs) await images.pullImage(ref);
  } finally {
    progress.finish();
  }
}

async function detached(ctx: CommandContext, file: string, text: string, replace: boolean): Promise<{ code: number; pods: { name: string; namespace: string }[] }> {
  const g = ctx.global;
  const { requestStartingSupervisor: request } = await import('../../runtime/supervisor.js');
  const paths = { root: g.root, runRoot: g.runRoot, logRoot: g.logRoot, registryConfig: g.registryConfig };
  // One round trip when a supervisor runs: the request names our paths and a supervisor started
  // with others refuses it. The pods get our --cgroup-parent, --network and --cni-conf-dir
  // whatever it was started with (main.ts puts them in the environment).
  const msg: UpTextRequest = upTextRequest(file, text, replace, g, process.env);
  // A supervisor with no pod exits when idle, and a pull can take longer than that: the second
  // request starts a new one when needed.
  let res = (await request(paths, msg, 300_000)) as unknown as UpTextAnswer;
  for (const w of res.warnings ?? []) ctx.events({ type: 'warning', message: w });
  if (res.needPull?.length) {
    await pullForSupervisor(ctx, res.needPull);
    res = (await request(paths, { ...msg, pulled: res.needPull }, 300_000)) as unknown as UpTextAnswer;
  }
  const pods = res.pods ?? [];
  return { code: printUpPods(ctx, pods), pods };
}

async function foreground(ctx: CommandContext, set: ManifestSet, images: ImageService, records: Record<string, ImageRecord>, replace: boolean): Promise<number> {
  const g = ctx.global;
  const tty = Boolean(ctx.stdout.isTTY);
  const multi = set.pods.length > 1;
  const names = set.pods.flatMap((p) => [...p.initContainers, ...p.containers].map((c) => (multi ? `${p.name}/${c.name}` : c.name)));
  const width = Math.max(...names.map((n) => n.length));
  const color = new Map(names.map((n, i) => [n, COLORS[i % COLORS.length]]));
  const prefix = (n: string) => {
    const p = `${n.padEnd(width)} |`;
    return tty ? `\x1b[${color.get(n) ?? 0}m${p}\x1b[0m ` : `${p} `;
  };
  const events = (ev: PodrunEvent) => {
    ctx.events(ev);
    if (ev.type === 'container' && (ev.reason || ev.state === 'terminated')) {
      const n = multi ? `${ev.pod}/${ev.container}` : ev.container;
      const detail = [ev.state, ev.reason, ev.exitCode !== undefined ? `exit code ${ev.exitCode}` : undefined].filter(Boolean).join(', ');
      ctx.stderr.write(`${prefix(n)}[${detail}${ev.message ? `: ${ev.message}` : ''}]\n`);
    }
  };
  const { PodRuntime } = await import('../../runtime/api.js');
  const { followLogs } = await import('../../runtime/logs.js');
  const { podLogDir } = await import('../../runtime/paths.js');
  const rt = await PodRuntime.open({ root: g.root, runRoot: g.runRoot, logRoot: g.logRoot, registryConfig: g.registryConfig, events, images });
  const keys: string[] = [];
  try {
    for (const plan of set.pods) {
      const up = await rt.upPod(plan, { replace, firstPullPolicy: 'IfNotPresent', manifests: set, images: records });
      if (up.created) keys.push(up.key);
      else ctx.stderr.write(`pod/${plan.name} is already running with this spec: nothing to do\n`);
    }
  } catch (err) {
    for (const k of keys) await rt.downPod(k, { gracePeriodSeconds: 0 }).catch(() => {});
    throw err;
  }
  if (keys.length === 0) return 0;

  const abort = new AbortController();
  const followers: Promise<void>[] = [];
  for (const plan of set.pods.filter((p) => keys.includes(`${p.namespace}_${p.name}`))) {
    for (const c of [...plan.initContainers, ...plan.containers]) {
      const n = multi ? `${plan.name}/${c.name}` : c.name;
      const dir = path.join(podLogDir(rt.ctx.paths, plan.namespace, plan.name, plan.uid), c.name);
      followers.push(followLogs(dir, (l) => ctx.stdout.write(`${prefix(n)}${l.text}\n`), { signal: abort.signal, pollMs: 100 }).catch(() => {}));
    }
  }

  let signals = 0;
  const stopped = new Promise<'signal'>((resolve) => {
    const on = () => {
      signals++;
      if (signals === 1) {
        ctx.stderr.write('\nStopping (Ctrl-C again to kill at once)…\n');
        resolve('signal');
      } else {
        for (const k of keys) void rt.downPod(k, { gracePeriodSeconds: 0 }).catch(() => {});
      }
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
  const finished = Promise.all(keys.map((k) => rt.waitDone(k)));
  const how = await Promise.race([stopped, finished.then(() => 'done' as const)]);
  // stop first (the containers' last words still reach the terminal), then remove
  if (how === 'signal') await Promise.all(keys.map((k) => rt.stopPodSandbox(k).catch(() => {})));
  const statuses = keys.map((k) => rt.podStatus(k));
  await new Promise((r) => setTimeout(r, 150)); // let the followers print the last lines
  abort.abort();
  await Promise.all(followers);
  for (const k of keys) await rt.downPod(k).catch((err) => ctx.stderr.write(`podrun up: ${(err as Error).message}\n`));
  if (how === 'signal') return 0;
  const failed = statuses.some((s) => s?.phase !== 'Succeeded');
  for (const [i, s] of statuses.entries()) ctx.stderr.write(`pod/${set.pods.find((p) => `${p.namespace}_${p.name}` === keys[i])?.name}: ${s?.phase ?? 'unknown'}\n`);
  return failed ? 1 : 0;
}
