import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';
import { parseDuration, parsePodRef, parseWaitFor, waitForPod } from '../../runtime/controller/stored.js';

const command: Command = {
  name: 'wait',
  summary: 'Wait until a pod meets a condition (Ready …), reaches a phase, or is deleted',
  usage: 'podrun wait [-n NAMESPACE] --for=condition=Ready|--for=delete|--for=phase=Succeeded [--timeout 30s] POD',
  description: `Like kubectl wait: exits 0 once the condition holds, 1 after --timeout (default 30s).
--for=condition=TYPE[=true|false] waits for a pod condition (Ready, ContainersReady,
Initialized); --for=phase=PHASE for a phase; --for=delete until the pod is gone.`,
  options: {
    namespace: { type: 'string', short: 'n' },
    for: { type: 'string' },
    timeout: { type: 'string' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length !== 1) throw new PodrunError('EINVAL_ARG', 'Cannot wait: give exactly one POD', { hint: command.usage });
    if (!values.for) throw new PodrunError('EINVAL_ARG', 'Cannot wait: --for is required', { hint: command.usage });
    const w = parseWaitFor(values.for as string);
    const timeoutMs = parseDuration((values.timeout as string | undefined) ?? '30s');
    const ref = parsePodRef(positionals[0], (values.namespace as string | undefined) ?? 'default');
    const met = await waitForPod(ctx.global, ref, w, timeoutMs);
    const what = w.kind === 'delete' ? 'deleted' : w.kind === 'phase' ? `phase ${w.phase}` : `condition met (${w.type}=${w.value})`;
    if (met) {
      ctx.stdout.write(`pod/${ref.name} ${what}\n`);
      return 0;
    }
    ctx.stderr.write(`podrun wait: timed out waiting for the condition on pods/${ref.name}\n`);
    return 1;
  },
};
export default command;
