import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'inspect',
  summary: '(not implemented yet)',
  usage: 'podrun inspect',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "inspect": not implemented yet');
  },
};
export default command;
