import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'image prune',
  summary: '(not implemented yet)',
  usage: 'podrun image prune',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "image prune": not implemented yet');
  },
};
export default command;
