import type { Command } from '../command.js';
import { ImageService } from '../../image/index.js';
import { PodrunError } from '../../util/errors.js';

const command: Command = {
  name: 'rmi',
  summary: 'Remove image names from the store (content goes with "podrun image prune")',
  usage: 'podrun rmi REF...',
  async run(ctx, _values, positionals) {
    if (!positionals.length) throw new PodrunError('EINVAL_ARG', 'Cannot remove images: no reference given');
    const svc = new ImageService({ root: ctx.global.root, events: ctx.events });
    for (const ref of positionals) {
      for (const name of await svc.removeImage(ref)) ctx.stdout.write(`Untagged: ${name}\n`);
    }
    return 0;
  },
};
export default command;
