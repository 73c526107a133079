import fs from 'node:fs';
import type { Command, CommandContext } from '../command.js';
import { PodrunError } from '../../util/errors.js';
import type { PodRuntime } from '../../runtime/api.js';
import { podKey, podRunDir, supervisorSocket, type RuntimePaths } from '../../runtime/paths.js';
import { findPodState, readState } from '../../runtime/state.js';
import { askSupervisorToStop, supervisorRequest } from '../../runtime/client.js';
import type { PodName } from '../../spec/pod-names.js';

const command: Command = {
  name: 'down',
  summary: 'Stop pods gracefully and remove everything they created',
  usage: 'podrun down [--grace-period SECONDS] FILE|POD…',
  description: `Each argument is a manifest file (its pods are stopped) or a pod name
("name" or "namespace/name"). Containers get their stop signal (SIGTERM or the image's
STOPSIGNAL), then SIGKILL after terminationGracePeriodSeconds (or --grace-period). Then the
sandbox goes: network, /dev/shm, namespace pins, cgroups, volumes, state and logs.
Works whether the pod is supervised in the background, by a foreground "podrun up", or by
nobody (its supervisor was killed).`,
  options: {
    'grace-period': { type: 'string' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length === 0) throw new PodrunError('EINVAL_ARG', 'Cannot run "down": give a manifest file or pod names', { hint: command.usage });
    const grace = values['grace-period'] === undefined ? undefined : Number(values['grace-period']);
    if (grace !== undefined && !(Number.isInteger(grace) && grace >= 0)) throw new PodrunError('EINVAL_ARG', `Cannot use --grace-period "${values['grace-period']}": not a whole number of seconds`);
    const g = ctx.global;
    const paths = { root: g.root, runRoot: g.runRoot, logRoot: g.logRoot };
    const keys: DownTarget[] = [];
    for (const arg of positionals) {
      if (fs.existsSync(arg) && fs.statSync(arg).isFile()) {
        for (const p of await podNames(arg, paths)) keys.push({ key: podKey(p.namespace, p.name), label: p.name, mustExist: false });
      } else {
        const st = findPodState(paths, arg);
        keys.push({ key: st.key, label: st.name, mustExist: true });
      }
    }
    const one = downer(ctx, grace);
    let code = 0;
    for (const k of keys) code = Math.max(code, await one(k, false));
    return code;
  },
};
export default command;

export interface DownTarget {
  key: string;
  /** The pod's name as printed. */
  label: string;
  /** Named by the user (an error when absent) rather than by a file ("not running"). */
  mustExist: boolean;
}

/**
 * Takes pods down one at a time from this process, printing "pod/NAME removed", "pod/NAME not
 * running" or the error; each call returns its exit code. A pod its background supervisor owns is
 * stopped by that supervisor, asked over its socket: the runtime (and ffi) is loaded here only
 * for a pod nobody supervises, or when asking fails (`supervisorFailed`: it was asked already,
 * by a down-text request).
 */
export function downer(ctx: CommandContext, grace: number | undefined): (k: DownTarget, supervisorFailed: boolean) => Promise<number> {
  const g = ctx.global;
  const paths = { root: g.root, runRoot: g.runRoot, logRoot: g.logRoot };
  let rt: PodRuntime | undefined;
  const warn = (message: string) => ctx.events({ type: 'warning', message });
  return async (k, supervisorFailed) => {
    try {
      if (!readState(paths, k.key) && !fs.existsSync(podRunDir(paths, k.key))) throw new PodrunError('ENOTFOUND', `Cannot stop pod "${k.key}": no such pod`);
      const asked = supervisorFailed ? 'failed' : await askSupervisorToStop(paths, k.key, grace, warn);
      if (asked !== 'removed') {
        if (!rt) {
          const { PodRuntime } = await import('../../runtime/api.js');
          rt = await PodRuntime.open({ root: g.root, runRoot: g.runRoot, logRoot: g.logRoot, registryConfig: g.registryConfig, events: ctx.events });
        }
        await rt.downPod(k.key, { gracePeriodSeconds: grace, ownerAsked: asked === 'failed' });
      }
      ctx.stdout.write(`pod/${k.label} removed\n`);
      return 0;
    } catch (err) {
      if (!k.mustExist && err instanceof PodrunError && err.code === 'ENOTFOUND') {
        ctx.stdout.write(`pod/${k.label} not running\n`);
        return 0;
      }
      ctx.stderr.write(`podrun down: ${(err as Error).message}\n`);
      if (err instanceof PodrunError && err.hint) ctx.stderr.write(`hint: ${err.hint}\n`);
      return 1;
    }
  };
}

/**
 * The pods a manifest file names. A running supervisor (which has the YAML reader loaded) is
 * asked, so `down FILE` costs no more than `down NAME`; otherwise the file is read here.
 */
async function podNames(file: string, paths: RuntimePaths): Promise<PodName[]> {
  const text = fs.readFileSync(file, 'utf8');
  if (fs.existsSync(supervisorSocket(paths))) {
    try {
      const res = await supervisorRequest(supervisorSocket(paths), { op: 'pod-names', text, source: file }, 10_000);
      if (Array.isArray(res.pods)) return res.pods as PodName[];
    } catch (err) {
      if (err instanceof PodrunError && err.code === 'EINVAL_SPEC') throw err;
      /* no live supervisor: read it here */
    }
  }
  const { podNamesOf } = await import('../../spec/pod-names.js');
  return podNamesOf(text, file);
}
