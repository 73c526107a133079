import type { Command } from '../command.js';
import { runDoctor, type DoctorCheck } from '../../runtime/doctor.js';

/** A failed check always gets a hint line, even when the library gave none. */
const FALLBACK_HINT = 'see README.md (quick start) for what podrun needs from the machine';

const command: Command = {
  name: 'doctor',
  summary: 'Check what this machine offers podrun (kernel, cgroups, overlayfs, shim, CNI)',
  usage: 'podrun doctor',
  description: `Each check prints ok, warn or FAIL, with a hint to fix it. Exit status 1 when a check fails.
With --network none (PODRUN_NETWORK=none: pods without a CNI network) the CNI checks are skipped.`,
  async run(ctx) {
    const networkOff = process.env.PODRUN_NETWORK === 'none';
    let checks: DoctorCheck[] = await runDoctor({ runRoot: ctx.global.runRoot, cniConfDir: process.env.PODRUN_CNI_CONF_DIR });
    if (networkOff) {
      checks = checks.filter((c) => c.name !== 'CNI');
      checks.push({ name: 'CNI', ok: true, detail: 'skipped: networking is disabled (--network none / PODRUN_NETWORK=none)' });
    }
    const tty = Boolean(ctx.stdout.isTTY);
    const paint = (c: number, s: string) => (tty ? `\x1b[${c}m${s}\x1b[0m` : s);
    for (const c of checks) {
      const tag = !c.ok ? paint(31, 'FAIL') : c.level === 'warn' ? paint(33, 'warn') : paint(32, 'ok  ');
      ctx.stdout.write(`${tag} ${c.name.padEnd(16)} ${c.detail}\n`);
      const hint = c.hint || (!c.ok ? FALLBACK_HINT : undefined);
      if (hint && (!c.ok || c.level === 'warn')) ctx.stdout.write(`     ${''.padEnd(16)} hint: ${hint}\n`);
    }
    const failed = checks.filter((c) => !c.ok).length;
    if (failed) ctx.stderr.write(`podrun doctor: ${failed} check${failed > 1 ? 's' : ''} failed\n`);
    return failed ? 1 : 0;
  },
};
export default command;
