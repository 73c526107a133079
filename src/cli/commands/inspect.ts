import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';
import { findPodState, isAlive } from '../../runtime/state.js';

const command: Command = {
  name: 'inspect',
  summary: "Print everything podrun knows about a pod as JSON (state, plan, resources, status)",
  usage: 'podrun inspect POD',
  async run(ctx, _values, positionals) {
    if (positionals.length !== 1) throw new PodrunError('EINVAL_ARG', 'Cannot inspect: give exactly one POD', { hint: command.usage });
    const g = ctx.global;
    const st = findPodState({ root: g.root, runRoot: g.runRoot, logRoot: g.logRoot }, positionals[0]);
    const out = { ...st, supervised: isAlive(st.owner) };
    ctx.stdout.write(JSON.stringify(out, (k, v) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v), 2) + '\n');
    return 0;
  },
};
export default command;
