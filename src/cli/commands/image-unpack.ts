import * as path from 'node:path';
import type { Command } from '../command.js';
import { ImageService } from '../../image/index.js';
import { PodrunError } from '../../util/errors.js';

const command: Command = {
  name: 'image unpack',
  summary: 'Write an image\'s flattened root filesystem into a directory',
  usage: 'podrun image unpack REF DIR',
  description: 'Applies the layers of a stored image in order (like "umoci raw unpack"); DIR must be missing or empty.',
  async run(ctx, _values, positionals) {
    if (positionals.length !== 2) throw new PodrunError('EINVAL_ARG', `Cannot unpack: expected REF and DIR, got ${positionals.length} arguments`);
    const dir = path.resolve(positionals[1]);
    const rec = await new ImageService({ root: ctx.global.root, events: ctx.events }).unpackImage(positionals[0], dir);
    ctx.stdout.write(`Unpacked ${rec.names[0] ?? rec.digest} (${rec.layers.length} layers) into ${dir}\n`);
    return 0;
  },
};
export default command;
