import type { Command } from '../command.js';
import { ImageService } from '../../image/index.js';
import { PodrunError } from '../../util/errors.js';

const command: Command = {
  name: 'image inspect',
  summary: 'Show an image\'s manifest and config as JSON',
  usage: 'podrun image inspect REF',
  async run(ctx, _values, positionals) {
    if (positionals.length !== 1) throw new PodrunError('EINVAL_ARG', `Cannot inspect: expected one image reference, got ${positionals.length}`);
    const r = await new ImageService({ root: ctx.global.root, events: ctx.events }).inspectImage(positionals[0]);
    const out = { names: r.record.names, digest: r.record.digest, indexDigest: r.record.indexDigest, platform: r.record.platform, layers: r.record.layers, manifest: r.manifest, config: r.config, index: r.index };
    ctx.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return 0;
  },
};
export default command;
