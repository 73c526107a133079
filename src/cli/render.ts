import type { GlobalOptions } from './command.js';
import type { EventSink, PodrunEvent } from '../util/events.js';

/**
 * Turns library events into terminal output on stderr: warnings always, kernel steps with
 * --trace. Commands that show progress (pull) or logs (up) add their own renderers on top.
 */
export function makeRenderer(global: GlobalOptions, err: NodeJS.WriteStream): EventSink {
  return (ev: PodrunEvent) => {
    if (ev.type === 'warning') err.write(`warning: ${ev.message}\n`);
    else if (ev.type === 'trace' && global.trace) err.write(`trace: [${ev.area}] ${ev.step}${ev.detail ? ` ${ev.detail}` : ''}\n`);
  };
}
