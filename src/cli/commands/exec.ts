import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';
import { PodRuntime } from '../../runtime/api.js';
import { execInContainer, isSameProcess } from '../../runtime/shim.js';

const command: Command = {
  name: 'exec',
  summary: 'Run a command in a running container of a pod',
  usage: 'podrun exec [-i] [-t] POD [-c CONTAINER] -- CMD…',
  description: `Joins the container's namespaces and cgroup, takes its user, groups, capabilities,
environment and working directory, and runs CMD. The exit status is the command's.

  -i, --interactive  pass podrun's stdin to CMD. Without -i, CMD's stdin is /dev/null and podrun
                     never reads its own stdin (a pipe or file given to podrun stays unread).
  -t, --tty          give CMD a terminal (a pty of the container's /dev/pts) as stdin, stdout and
                     stderr; its output arrives on podrun's stdout. With -i and a terminal on
                     podrun's stdin, that terminal is put in raw mode, its window size is copied
                     and follows SIGWINCH. Without -i the pty gets no input (reads see end of
                     file) and takes its size from a terminal on stdout. As podman does, -t
                     also works when podrun's stdin is not a terminal (no warning): -i then
                     feeds the pipe into the pty, which echoes it. Use -i alone to feed data
                     to a command.`,
  passthrough: true,
  options: {
    interactive: { type: 'boolean', short: 'i' },
    tty: { type: 'boolean', short: 't' },
    container: { type: 'string', short: 'c' },
  },
  async run(ctx, values, positionals, rest) {
    if (positionals.length !== 1) throw new PodrunError('EINVAL_ARG', 'Cannot exec: give exactly one POD', { hint: command.usage });
    if (rest.length === 0) throw new PodrunError('EINVAL_ARG', 'Cannot exec: no command after "--"', { hint: command.usage });
    const g = ctx.global;
    const rt = await PodRuntime.open({ root: g.root, runRoot: g.runRoot, logRoot: g.logRoot, registryConfig: g.registryConfig, events: ctx.events });
    const st = rt.findPod(positionals[0]);
    const name = (values.container as string | undefined) ?? st.plan.containers[0].name;
    const running = Object.values(st.containers).filter((c) => c.name === name && c.state === 'running' && c.init && isSameProcess(c.init.pid, c.init.startTime));
    const rec = running[running.length - 1];
    if (!rec?.init) {
      const names = [...st.plan.initContainers, ...st.plan.containers].map((c) => c.name);
      throw new PodrunError('ENOTFOUND', `Cannot exec in container "${name}" of pod "${st.name}": it is not running`, {
        hint: names.includes(name) ? 'see "podrun ps -o wide"' : `the pod has ${names.join(', ')}`,
      });
    }
    const r = await execInContainer(
      { pid: rec.init.pid, startTime: rec.init.startTime, cgroupProcs: rt.ctx.cgroups.procsFiles(rec.cgroupRel), process: { ...rec.process, args: rest }, terminal: Boolean(values.tty) },
      { stdio: 'inherit', stdin: values.interactive ? 'inherit' : 'null', sink: ctx.events },
    );
    return r.exitCode;
  },
};
export default command;
