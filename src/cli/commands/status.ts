import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';
import { parsePodRef, readStoredPod } from '../../runtime/controller/stored.js';

const command: Command = {
  name: 'status',
  summary: "Print a pod's status in Kubernetes' shape (phase, conditions, container states)",
  usage: 'podrun status [-n NAMESPACE] [-o yaml|json] POD',
  description: `The status as kubelet would report it: phase, conditions (Initialized, Ready,
ContainersReady …), initContainerStatuses and containerStatuses with state, lastState,
ready, started, restartCount, image and IDs; podIP and startTime. POD may be NAMESPACE/NAME.`,
  options: {
    namespace: { type: 'string', short: 'n' },
    output: { type: 'string', short: 'o' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length !== 1) throw new PodrunError('EINVAL_ARG', 'Cannot show status: give exactly one POD', { hint: command.usage });
    const format = (values.output as string | undefined) ?? 'yaml';
    if (format !== 'yaml' && format !== 'json') throw new PodrunError('EINVAL_ARG', `Cannot print status as "${format}": use -o yaml or -o json`);
    const ref = parsePodRef(positionals[0], (values.namespace as string | undefined) ?? 'default');
    const pod = readStoredPod(ctx.global, ref);
    if (!pod) throw new PodrunError('ENOTFOUND', `Cannot show status of pod "${ref.namespace}/${ref.name}": not found`, { hint: 'podrun ps -a lists the pods' });
    if (!pod.ownerAlive && pod.state.sandbox === 'Ready' && !['Succeeded', 'Failed'].includes(pod.status.phase)) {
      ctx.events({ type: 'warning', message: `pod "${ref.namespace}/${ref.name}" has no running supervisor: this status may be stale` });
    }
    // yaml is loaded only for the YAML output
    ctx.stdout.write(format === 'json' ? JSON.stringify(pod.status, null, 2) + '\n' : (await import('yaml')).stringify(pod.status));
    return 0;
  },
};
export default command;
