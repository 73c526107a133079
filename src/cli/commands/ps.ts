import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';
import { storedPods, type PodSummary } from '../../runtime/summary.js';
import { readyColumn, restartsColumn, statusColumn } from '../../runtime/controller/status.js';
const command: Command = {
  name: 'ps',
  summary: 'List pods and their containers (status, restarts, age, reason)',
  usage: 'podrun ps [-a] [-o wide|json]',
  description: `Without -a, only pods that are running or starting. -o wide adds the pod IP,
the namespace and one line per container; -o json prints everything podrun knows.`,
  options: {
    all: { type: 'boolean', short: 'a' },
    output: { type: 'string', short: 'o' },
  },
  async run(ctx, values) {
    const out = (values.output as string | undefined) ?? 'table';
    if (!['table', 'wide', 'json'].includes(out)) throw new PodrunError('EINVAL_ARG', `Cannot print pods as "${out}": use -o wide or -o json`);
    const g = ctx.global;
    // the state files, without the runtime: `ps` loads no kernel interface
    let stored = storedPods({ root: g.root, runRoot: g.runRoot, logRoot: g.logRoot });
    if (!values.all) stored = stored.filter(({ summary: p }) => p.sandbox !== 'Stopped' && !['Succeeded', 'Failed'].includes(p.status?.phase ?? ''));
    if (out === 'json') {
      ctx.stdout.write(JSON.stringify(stored.map((x) => x.summary), null, 2) + '\n');
      return 0;
    }
    const rows: string[][] = [];
    const wide = out === 'wide';
    rows.push(wide ? ['NAMESPACE', 'NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', 'IP', 'SUPERVISED'] : ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
    for (const { st, summary: p } of stored) {
      const plan = st.plan;
      const s = p.status;
      const ready = s && plan ? readyColumn(s, plan) : '-';
      let status = s && plan ? statusColumn(s, plan) : p.sandbox;
      if (p.sandbox === 'Stopping') status = 'Terminating';
      if (!p.supervised && s && !['Succeeded', 'Failed'].includes(s.phase)) status += ' (unsupervised)';
      // kubectl's "3 (12s ago)": restarts of the containers that count, and the last one's age
      const restarts = s && plan ? restartsColumn(s, plan) : String([...(s?.initContainerStatuses ?? []), ...(s?.containerStatuses ?? [])].reduce((n, c) => n + c.restartCount, 0));
      const age = ageOf(p.createdAt);
      rows.push(wide ? [p.namespace, p.name, ready, status, restarts, age, p.podIP ?? '-', p.supervised ? 'yes' : 'no'] : [p.name, ready, status, restarts, age]);
      if (wide) for (const c of containerRows(p)) rows.push(['', `  ${c[0]}`, '', c[1], c[2], c[3], c[4], '']);
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) ctx.stdout.write(r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]))).join('   ').trimEnd() + '\n');
    return 0;
  },
};
export default command;

function containerRows(p: PodSummary): string[][] {
  const s = p.status;
  if (!s) return [];
  return [...(s.initContainerStatuses ?? []), ...s.containerStatuses].map((c) => {
    const st = c.state.running ? 'running' : c.state.terminated ? `exited ${c.state.terminated.exitCode} (${c.state.terminated.reason})` : `waiting (${c.state.waiting?.reason ?? '?'})`;
    const started = c.state.running?.startedAt ?? c.state.terminated?.startedAt;
    return [c.name, st, String(c.restartCount), started ? ageOf(started) : '-', c.containerID?.replace(/^podrun:\/\//, '') ?? '-'];
  });
}

export function ageOf(iso: string): string {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
