import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'gc',
  summary: '(not implemented yet)',
  usage: 'podrun gc',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "gc": not implemented yet');
  },
};
export default command;
