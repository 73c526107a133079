import type { Command } from '../command.js';
import { PodRuntime } from '../../runtime/api.js';

const command: Command = {
  name: 'gc',
  summary: 'Remove what crashed pods left behind (processes, mounts, pins, cgroups, networks)',
  usage: 'podrun gc',
  description: `Pods whose supervisor (or foreground "podrun up") is gone are removed completely:
their containers are killed and every resource recorded in their state file is undone.
Stray pod cgroups and CNI attachments that no pod owns are removed too. Pods with a live
supervisor are left alone.`,
  async run(ctx) {
    const g = ctx.global;
    const rt = await PodRuntime.open({ root: g.root, runRoot: g.runRoot, logRoot: g.logRoot, registryConfig: g.registryConfig, events: ctx.events });
    const r = await rt.gc();
    for (const p of r.pods) ctx.stdout.write(`removed pod ${p.replace('_', '/')}\n`);
    for (const p of r.strayDirs) ctx.stdout.write(`removed stray pod dir ${p}\n`);
    for (const p of r.trash) ctx.stdout.write(`removed unfinished deletion ${p}\n`);
    for (const c of r.cgroups) ctx.stdout.write(`removed stray cgroup ${c}\n`);
    for (const n of r.networks) ctx.stdout.write(`released network attachment ${n}\n`);
    for (const e of r.errors) ctx.stderr.write(`podrun gc: ${e}\n`);
    if (!r.pods.length && !r.strayDirs.length && !r.trash.length && !r.cgroups.length && !r.networks.length && !r.errors.length) ctx.stdout.write('nothing to remove\n');
    return r.errors.length ? 1 : 0;
  },
};
export default command;
