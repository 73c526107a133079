import fs from 'node:fs';
import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';
import { PodRuntime } from '../../runtime/api.js';
import { podKey } from '../../runtime/paths.js';

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
    const rt = await PodRuntime.open({ root: g.root, runRoot: g.runRoot, logRoot: g.logRoot, registryConfig: g.registryConfig, events: ctx.events });
    const keys: { key: string; label: string; mustExist: boolean }[] = [];
    for (const arg of positionals) {
      if (fs.existsSync(arg) && fs.statSync(arg).isFile()) {
        for (const p of await podNames(arg)) keys.push({ key: podKey(p.namespace, p.name), label: p.name, mustExist: false });
      } else {
        const st = rt.findPod(arg);
        keys.push({ key: st.key, label: st.name, mustExist: true });
      }
    }
    let code = 0;
    for (const k of keys) {
      try {
        await rt.downPod(k.key, { gracePeriodSeconds: grace });
        ctx.stdout.write(`pod/${k.label} removed\n`);
      } catch (err) {
        if (!k.mustExist && err instanceof PodrunError && err.code === 'ENOTFOUND') {
          ctx.stdout.write(`pod/${k.label} not running\n`);
          continue;
        }
        code = 1;
        ctx.stderr.write(`podrun down: ${(err as Error).message}\n`);
        if (err instanceof PodrunError && err.hint) ctx.stderr.write(`hint: ${err.hint}\n`);
      }
    }
    return code;
  },
};
export default command;

/**
 * The pods a manifest file names. Only names are needed to remove pods, so this reads the YAML
 * without the validating parser (zod): `down` of a file is as fast as `down` of a name, and a
 * file that no longer validates can still be taken down.
 */
async function podNames(file: string): Promise<{ namespace: string; name: string }[]> {
  const { parseAllDocuments } = await import('yaml');
  const out: { namespace: string; name: string }[] = [];
  const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'), { version: '1.1' });
  for (const doc of Array.isArray(docs) ? docs : []) {
    if (doc.errors.length) throw new PodrunError('EINVAL_SPEC', `Cannot read manifest "${file}": ${doc.errors[0].message}`);
    const o = doc.toJS() as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
    if (!o || o.kind !== 'Pod' || typeof o.metadata?.name !== 'string') continue;
    out.push({ namespace: typeof o.metadata.namespace === 'string' && o.metadata.namespace ? o.metadata.namespace : 'default', name: o.metadata.name });
  }
  return out;
}
