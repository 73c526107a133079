import { parseArgs } from 'node:util';
import type { Command, CommandContext, GlobalOptions } from './command.js';
import { isPodrunError, PodrunError } from '../util/errors.js';
import { makeRenderer } from './render.js';

/**
 * The command table. Each verb lives in its own file under commands/ and is imported only
 * when used, so `podrun ps` does not pay for the image code.
 */
const COMMANDS: Record<string, () => Promise<{ default: Command }>> = {
  pull: () => import('./commands/pull.js'),
  images: () => import('./commands/images.js'),
  'image inspect': () => import('./commands/image-inspect.js'),
  'image unpack': () => import('./commands/image-unpack.js'),
  'image prune': () => import('./commands/image-prune.js'),
  rmi: () => import('./commands/rmi.js'),
  up: () => import('./commands/up.js'),
  down: () => import('./commands/down.js'),
  ps: () => import('./commands/ps.js'),
  logs: () => import('./commands/logs.js'),
  exec: () => import('./commands/exec.js'),
  inspect: () => import('./commands/inspect.js'),
  status: () => import('./commands/status.js'),
  wait: () => import('./commands/wait.js'),
  gc: () => import('./commands/gc.js'),
  doctor: () => import('./commands/doctor.js'),
  supervisor: () => import('./commands/supervisor.js'),
};

const GLOBAL_HELP = `Global options (before or after the command):
  --root DIR             image store and layers (env PODRUN_ROOT, default /var/lib/podrun)
  --run-root DIR         pod state, namespace pins, mounts (env PODRUN_RUN_ROOT, default /run/podrun)
  --log-root DIR         container logs (env PODRUN_LOG_ROOT, default /var/log/pods)
  --registry-config FILE registry mirrors, auth and TLS (env PODRUN_REGISTRY_CONFIG,
                         default /etc/podrun/registries.yaml)
  --cgroup-parent NAME   first element of every pod cgroup path (env PODRUN_CGROUP_PARENT,
                         default podrun)
  --network none|default pods get loopback only, or the default CNI network
                         (env PODRUN_NETWORK, default "default")
  --cni-conf-dir DIR     CNI conflists for the default network (env PODRUN_CNI_CONF_DIR,
                         default /etc/podrun/cni)
  --trace                print every kernel-level step (syscalls, mounts, cgroup writes, CNI calls)
  -h, --help             help for podrun or for a command`;

const GLOBAL_OPTIONS = {
  root: { type: 'string' },
  'run-root': { type: 'string' },
  'log-root': { type: 'string' },
  'registry-config': { type: 'string' },
  'cgroup-parent': { type: 'string' },
  network: { type: 'string' },
  'cni-conf-dir': { type: 'string' },
  trace: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function globalDefaults(env: NodeJS.ProcessEnv = process.env): GlobalOptions {
  return {
    root: env.PODRUN_ROOT || '/var/lib/podrun',
    runRoot: env.PODRUN_RUN_ROOT || '/run/podrun',
    logRoot: env.PODRUN_LOG_ROOT || '/var/log/pods',
    registryConfig: env.PODRUN_REGISTRY_CONFIG || '/etc/podrun/registries.yaml',
    trace: false,
  };
}

/** Finds the longest command name that prefixes argv's non-option words ("image inspect" before "image"). */
function findCommand(argv: string[]): { key: string; index: number[] } | undefined {
  const words: { w: string; i: number }[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const a = argv[i];
    if (a === '--') break;
    if (a.startsWith('-')) {
      // global options that take a value swallow the next word
      const name = a.replace(/^--?/, '').split('=')[0];
      const def = (GLOBAL_OPTIONS as Record<string, { type: string }>)[name];
      if (def?.type === 'string' && !a.includes('=')) i++;
      continue;
    }
    words.push({ w: a, i });
  }
  if (words.length >= 2 && COMMANDS[`${words[0].w} ${words[1].w}`]) {
    return { key: `${words[0].w} ${words[1].w}`, index: [words[0].i, words[1].i] };
  }
  if (words.length >= 1 && COMMANDS[words[0].w]) return { key: words[0].w, index: [words[0].i] };
  return undefined;
}

async function printTopHelp(out: NodeJS.WriteStream): Promise<void> {
  const lines = ['Usage: podrun [global options] COMMAND [options]', '', 'Commands:'];
  for (const [key, load] of Object.entries(COMMANDS)) {
    try {
      const cmd = (await load()).default;
      if (key === 'supervisor') continue; // internal
      lines.push(`  ${key.padEnd(16)} ${cmd.summary}`);
    } catch {
      /* a verb not built yet is not listed */
    }
  }
  lines.push('', GLOBAL_HELP, '', 'Run "podrun COMMAND --help" for the options of a command.');
  out.write(lines.join('\n') + '\n');
}

function commandHelp(cmd: Command): string {
  const lines = [`Usage: ${cmd.usage}`, '', cmd.summary];
  if (cmd.description) lines.push('', cmd.description.trimEnd());
  const opts = Object.entries(cmd.options ?? {});
  if (opts.length) {
    lines.push('', 'Options:');
    for (const [name, o] of opts) {
      const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ' VALUE' : ''}`;
      lines.push(`  ${flag}`);
    }
  }
  lines.push('', GLOBAL_HELP);
  return lines.join('\n') + '\n';
}

export async function main(argv: string[]): Promise<number> {
  const stdout = process.stdout;
  const stderr = process.stderr;
  const found = findCommand(argv);
  if (!found) {
    const wantsHelp = argv.length === 0 || argv.includes('--help') || argv.includes('-h') || argv[0] === 'help';
    if (wantsHelp) {
      await printTopHelp(stdout);
      return argv.length === 0 ? 2 : 0;
    }
    if (argv.includes('--version')) {
      stdout.write('podrun 0.1.0\n');
      return 0;
    }
    const word = argv.find((a) => !a.startsWith('-')) ?? argv[0];
    stderr.write(`podrun: unknown command "${word}". Run "podrun --help" for the list.\n`);
    return 2;
  }
  const cmd = (await COMMANDS[found.key]()).default;
  const rest = argv.filter((_, i) => !found.index.includes(i));
  let passthrough: string[] = [];
  let args = rest;
  const dd = rest.indexOf('--');
  if (dd >= 0) {
    passthrough = rest.slice(dd + 1);
    args = rest.slice(0, dd);
  }
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...GLOBAL_OPTIONS, ...(cmd.options ?? {}) },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    stderr.write(`podrun ${found.key}: ${(err as Error).message}\n\n${commandHelp(cmd)}`);
    return 2;
  }
  const v = parsed.values as Record<string, unknown>;
  if (v.help) {
    stdout.write(commandHelp(cmd));
    return 0;
  }
  const g = globalDefaults();
  const global: GlobalOptions = {
    root: (v.root as string) ?? g.root,
    runRoot: (v['run-root'] as string) ?? g.runRoot,
    logRoot: (v['log-root'] as string) ?? g.logRoot,
    registryConfig: (v['registry-config'] as string) ?? g.registryConfig,
    trace: Boolean(v.trace),
  };
  // The runtime (src/runtime/api.ts) reads these three from the environment; a supervisor
  // started by this command inherits them.
  const envFlags: [string, string][] = [
    ['cgroup-parent', 'PODRUN_CGROUP_PARENT'],
    ['network', 'PODRUN_NETWORK'],
    ['cni-conf-dir', 'PODRUN_CNI_CONF_DIR'],
  ];
  if (v.network !== undefined && !['none', 'default'].includes(v.network as string)) {
    stderr.write(`podrun ${found.key}: Cannot use --network "${v.network}": use none or default\n`);
    return 2;
  }
  for (const [flag, env] of envFlags) if (typeof v[flag] === 'string') process.env[env] = v[flag] as string;
  const ctx: CommandContext = { global, events: makeRenderer(global, stderr), stdout, stderr };
  try {
    return await cmd.run(ctx, v, parsed.positionals, passthrough);
  } catch (err) {
    if (isPodrunError(err)) {
      stderr.write(`podrun ${found.key}: ${err.message}\n`);
      if (err.hint) stderr.write(`hint: ${err.hint}\n`);
      if (process.env.PODRUN_DEBUG && err.cause) stderr.write(`cause: ${String((err.cause as Error)?.stack ?? err.cause)}\n`);
      return 1;
    }
    throw err;
  }
}

export { PodrunError };
