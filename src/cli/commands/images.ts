import type { Command } from '../command.js';
import { ImageService, formatPlatform, parseReference } from '../../image/index.js';
import { PodrunError } from '../../util/errors.js';
import { formatBytes } from '../progress.js';

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('   ')).join('\n') + '\n';
}

const command: Command = {
  name: 'images',
  summary: 'List the images in the local store',
  usage: 'podrun images [-o table|json]',
  options: { output: { type: 'string', short: 'o' } },
  async run(ctx, values) {
    const format = (values.output as string | undefined) ?? 'table';
    if (format !== 'table' && format !== 'json') throw new PodrunError('EINVAL_ARG', `Cannot list images: output format "${format}" is not "table" or "json"`);
    const images = await new ImageService({ root: ctx.global.root, events: ctx.events }).listImages();
    if (format === 'json') {
      ctx.stdout.write(JSON.stringify(images, null, 2) + '\n');
      return 0;
    }
    const rows = [['REPOSITORY', 'TAG', 'DIGEST', 'PLATFORM', 'SIZE', 'CREATED']];
    for (const img of images) {
      for (const name of img.names) {
        const ref = parseReference(name);
        rows.push([`${ref.registry}/${ref.repository}`, ref.tag ?? '<none>', img.digest.slice(7, 19), formatPlatform(img.platform), formatBytes(img.size), img.created?.slice(0, 19).replace('T', ' ') ?? '']);
      }
    }
    ctx.stdout.write(table(rows));
    return 0;
  },
};
export default command;
