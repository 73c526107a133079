import type { Command } from '../command.js';
import { ImageService } from '../../image/index.js';
import { formatBytes } from '../progress.js';

const command: Command = {
  name: 'image prune',
  summary: 'Remove blobs and layer directories no image name references',
  usage: 'podrun image prune',
  async run(ctx) {
    const r = await new ImageService({ root: ctx.global.root, events: ctx.events }).pruneImages();
    ctx.stdout.write(`Removed ${r.blobs} blobs (${formatBytes(r.bytes)}) and ${r.layers} layer directories\n`);
    return 0;
  },
};
export default command;
