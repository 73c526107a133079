import type { Command } from '../command.js';
import { ImageService } from '../../image/service.js';
import { PodrunError } from '../../util/errors.js';
import { makePullRenderer } from '../progress.js';

const command: Command = {
  name: 'pull',
  summary: 'Pull an image from a registry into the local store',
  usage: 'podrun pull [--platform os/arch[/variant]] [-q] REF',
  description: `Resolves REF (e.g. "busybox", "host:5000/team/app:1.0", "repo@sha256:…"), picks the platform
from an index (default: this host's), downloads and unpacks every layer, and prints the digest.
Progress goes to stderr: bars on a terminal, one line per layer otherwise.`,
  options: {
    platform: { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length !== 1) throw new PodrunError('EINVAL_ARG', `Cannot pull: expected one image reference, got ${positionals.length}`, { hint: 'podrun pull busybox' });
    const quiet = Boolean(values.quiet);
    const progress = makePullRenderer(ctx.stderr, ctx.events, { quiet });
    const svc = new ImageService({ root: ctx.global.root, registryConfigPath: ctx.global.registryConfig, events: progress.sink });
    try {
      const rec = await svc.pullImage(positionals[0], { platform: values.platform as string | undefined });
      progress.finish();
      ctx.stdout.write(quiet ? `${rec.digest}\n` : `Pulled ${rec.names[0]}\nDigest: ${rec.digest}\n`);
      return 0;
    } finally {
      progress.finish();
    }
  },
};
export default command;
