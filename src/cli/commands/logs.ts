import path from 'node:path';
import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';
import { followLogs, formatLogLine, readLogs } from '../../runtime/logs.js';
import { podLogDir } from '../../runtime/paths.js';
import { findPodState, isAlive, readState } from '../../runtime/state.js';

const command: Command = {
  name: 'logs',
  summary: "Print a container's logs",
  usage: 'podrun logs [-f] [--tail N] [--timestamps] [--previous] POD [-c CONTAINER]',
  description: `Reads the CRI log files under --log-root. Without -c, the pod must have one container
(or the first app container is used). --previous shows the run before the last restart.
-f keeps printing new lines (also across restarts) until the pod stops or Ctrl-C.`,
  options: {
    follow: { type: 'boolean', short: 'f' },
    tail: { type: 'string' },
    timestamps: { type: 'boolean' },
    previous: { type: 'boolean', short: 'p' },
    container: { type: 'string', short: 'c' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length !== 1) throw new PodrunError('EINVAL_ARG', 'Cannot show logs: give exactly one POD', { hint: command.usage });
    const tail = values.tail === undefined ? undefined : Number(values.tail);
    if (tail !== undefined && !(Number.isInteger(tail) && tail >= 0)) throw new PodrunError('EINVAL_ARG', `Cannot use --tail "${values.tail}": not a whole number`);
    const g = ctx.global;
    const paths = { root: g.root, runRoot: g.runRoot, logRoot: g.logRoot };
    const st = findPodState(paths, positionals[0]);
    const all = [...st.plan.initContainers, ...st.plan.containers].map((c) => c.name);
    let name = values.container as string | undefined;
    if (!name) {
      if (st.plan.containers.length > 1 || st.plan.initContainers.length > 0) {
        if (st.plan.containers.length > 1) {
          throw new PodrunError('EINVAL_ARG', `Cannot choose a container of pod "${st.name}": it has ${all.length} (${all.join(', ')})`, { hint: 'add -c CONTAINER' });
        }
      }
      name = st.plan.containers[0].name;
    }
    if (!all.includes(name)) throw new PodrunError('ENOTFOUND', `Cannot show logs of container "${name}": pod "${st.name}" has ${all.join(', ')}`);
    const dir = path.join(podLogDir(paths, st.namespace, st.name, st.uid), name);
    const ts = Boolean(values.timestamps);
    if (!values.follow) {
      for (const l of readLogs(dir, { tail, previous: Boolean(values.previous) })) ctx.stdout.write(formatLogLine(l, ts) + '\n');
      return 0;
    }
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    await followLogs(dir, (l) => ctx.stdout.write(formatLogLine(l, ts) + '\n'), {
      tail,
      signal: ac.signal,
      until: () => {
        const now = readState(paths, st.key);
        return !now || !isAlive(now.owner) || ['Succeeded', 'Failed'].includes((now.status as { phase?: string } | undefined)?.phase ?? '');
      },
    });
    return 0;
  },
};
export default command;
