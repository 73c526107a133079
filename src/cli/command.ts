import type { ParseArgsConfig } from 'node:util';
import type { EventSink } from '../util/events.js';

/** Options every command accepts (parsed by main before the verb). */
export interface GlobalOptions {
  root: string; // --root, PODRUN_ROOT, /var/lib/podrun
  runRoot: string; // --run-root, PODRUN_RUN_ROOT, /run/podrun
  logRoot: string; // --log-root, PODRUN_LOG_ROOT, /var/log/pods
  registryConfig: string; // --registry-config, PODRUN_REGISTRY_CONFIG, /etc/podrun/registries.yaml
  trace: boolean; // --trace: print every kernel-level step
}

export interface CommandContext {
  global: GlobalOptions;
  /** Renders library events (progress, traces, warnings) for this terminal. */
  events: EventSink;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

/**
 * One CLI verb: a short file that checks input and calls the library.
 * `options` uses node:util parseArgs syntax; `run` gets the parsed values and positionals
 * and returns the exit code.
 */
export interface Command {
  name: string; // "pull", "image inspect"
  summary: string; // one line for `podrun --help`
  usage: string; // "podrun pull [--platform os/arch[/variant]] REF"
  description?: string; // longer help text
  options?: ParseArgsConfig['options'];
  /** Whether free arguments after `--` are passed through (exec). */
  passthrough?: boolean;
  run(ctx: CommandContext, values: Record<string, unknown>, positionals: string[], rest: string[]): Promise<number>;
}
