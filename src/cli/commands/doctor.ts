import type { Command } from '../command.js';
import { runDoctor } from '../../runtime/doctor.js';

const command: Command = {
  name: 'doctor',
  summary: 'Check what this machine offers podrun (kernel, cgroups, overlayfs, shim, CNI)',
  usage: 'podrun doctor',
  description: 'Each check prints ok, warn or FAIL, with a hint to fix it. Exit status 1 when a check fails.',
  async run(ctx) {
    const checks = await runDoctor({ runRoot: ctx.global.runRoot, cniConfDir: process.env.PODRUN_CNI_CONF_DIR });
    const tty = Boolean(ctx.stdout.isTTY);
    const paint = (c: number, s: string) => (tty ? `\x1b[${c}m${s}\x1b[0m` : s);
    for (const c of checks) {
      const tag = !c.ok ? paint(31, 'FAIL') : c.level === 'warn' ? paint(33, 'warn') : paint(32, 'ok  ');
      ctx.stdout.write(`${tag} ${c.name.padEnd(16)} ${c.detail}\n`);
      if (c.hint && (!c.ok || c.level === 'warn')) ctx.stdout.write(`     ${''.padEnd(16)} hint: ${c.hint}\n`);
    }
    return checks.some((c) => !c.ok) ? 1 : 0;
  },
};
export default command;
