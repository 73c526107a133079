import fs from 'node:fs';

/**
 * Field 22 of /proc/PID/stat: the process's start time in clock ticks since boot, or undefined when
 * it is gone. With the pid it identifies a process across pid reuse.
 */
export function processStartTime(pid: number): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ")".
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field 22 is rest[19]
  const v = Number(rest[19]);
  return Number.isFinite(v) ? v : undefined;
}
