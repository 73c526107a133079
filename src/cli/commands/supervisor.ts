import type { Command } from '../command.js';
import { runSupervisor } from '../../runtime/supervisor.js';
import { settleRemovals } from '../../runtime/sandbox.js';

// Internal: started by "podrun up -d"; not listed in --help.
const command: Command = {
  name: 'supervisor',
  summary: 'Run the background pod supervisor for this run root (internal)',
  usage: 'podrun supervisor',
  description: `Watches the detached pods of the run root, re-adopts pods whose supervisor died,
serves <run-root>/supervisor.sock, and exits when no pod runs any more.`,
  async run(ctx) {
    const g = ctx.global;
    const ran = await runSupervisor({ root: g.root, runRoot: g.runRoot, logRoot: g.logRoot, registryConfig: g.registryConfig, events: ctx.events });
    if (!ran) ctx.stderr.write('podrun supervisor: another supervisor already serves this run root\n');
    // a pod's files may still be being deleted in the background; then leave at once: pods it
    // stopped watching may still hold timers (containers keep running)
    await settleRemovals();
    process.exit(0);
  },
};
export default command;
